// SPDX-License-Identifier: Apache-2.0

package cgbpf

import (
	"fmt"
	"os"
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
	// In the guests, new cgroups have no perf_event controller until one
	// is enabled below the root (seen on 6.1, 6.12 and 6.12-rt: no
	// switch between them counted).
	cg.EnableController()
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
