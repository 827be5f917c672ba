// SPDX-License-Identifier: Apache-2.0

package cgbpf

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/kushm/kushm/tools/cgwork"
)

// TestCgroupSwitchTrigger checks what BenchmarkPingPongPaired's
// prog=cgswitch-empty hook is said to be (docs/benchmarks.md): a program
// on the cgroup-switches event runs at a switch between two cgroups and
// not at a switch within one. A ping-pong across two cgroups on one CPU
// runs it at least twice a round trip; one within a cgroup, n round
// trips, runs it far fewer than n times (only when something of another
// cgroup ran on that CPU meanwhile).
func TestCgroupSwitchTrigger(t *testing.T) {
	cg := cgwork.NewCgroups(t)
	// On a cgroup2 hierarchy that nothing has changed since boot (the
	// qemu guests' own mount: no controller enabled below the root, none
	// taken away by a v1 mount), no switch between two new cgroups
	// counts (seen on 6.1, 6.12 and 6.12-rt): their perf_event cgroup,
	// implicit on cgroup2, is the root's. After a controller is enabled
	// in the root's subtree_control, new cgroups get their own, as on
	// systemd's hierarchies and on this hybrid host. The test enables
	// the first controller the root offers, when it has none enabled.
	enableController(t, cg.Mount)
	ncpus, err := possible()
	if err != nil {
		t.Fatal(err)
	}
	st, err := EnableRunStats()
	if err != nil {
		t.Skipf("BPF run statistics: %v", err)
	}
	defer st.Close()
	p, err := ebpf.NewProgram(emptyPerfEventSpec())
	if err != nil {
		t.Skipf("perf_event program: %v", err)
	}
	defer p.Close()
	hook, err := cgroupSwitchHook(p, ncpus)()
	if err != nil {
		t.Skipf("cgroup-switches event (Linux 5.13): %v", err)
	}
	defer hook.Close()
	runs := func() uint64 {
		s, err := p.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return s.RunCount
	}
	a, _ := cg.Mkdir(fmt.Sprintf("kushm-trigger-a-%d", os.Getpid()))
	b, _ := cg.Mkdir(fmt.Sprintf("kushm-trigger-b-%d", os.Getpid()))
	pair, err := cgwork.StartPair(a, b, benchCPU)
	if err != nil {
		t.Fatal(err)
	}
	defer pair.Close()
	const n = 5000
	r0 := runs()
	if _, err := pair.Trips(n); err != nil {
		t.Fatal(err)
	}
	got := runs() - r0
	t.Logf("across two cgroups: %d runs in %d round trips", got, n)
	if got < 2*n {
		t.Errorf("across two cgroups: %d runs in %d round trips, want >= %d", got, n, 2*n)
	}
	r0 = runs()
	if err := cgwork.PingPongOn(n, benchCPU); err != nil {
		t.Fatal(err)
	}
	got = runs() - r0
	t.Logf("within one cgroup: %d runs in %d round trips", got, n)
	if got >= n/2 {
		t.Errorf("within one cgroup: %d runs in %d round trips, want < %d", got, n, n/2)
	}
}

// enableController enables, when the root's cgroup.subtree_control is
// empty, the first controller its cgroup.controllers lists, until the end
// of t.
func enableController(t *testing.T, mount string) {
	ctl := mount + "/cgroup.subtree_control"
	b, err := os.ReadFile(ctl)
	if err != nil || len(strings.TrimSpace(string(b))) > 0 {
		return
	}
	avail, err := os.ReadFile(mount + "/cgroup.controllers")
	if err != nil {
		return
	}
	f := strings.Fields(string(avail))
	if len(f) == 0 {
		return
	}
	if err := os.WriteFile(ctl, []byte("+"+f[0]), 0); err != nil {
		t.Logf("enable %s in %s: %v", f[0], ctl, err)
		return
	}
	t.Cleanup(func() {
		if err := os.WriteFile(ctl, []byte("-"+f[0]), 0); err != nil {
			t.Errorf("disable %s again in %s: %v", f[0], ctl, err)
		}
	})
}
