// SPDX-License-Identifier: Apache-2.0

package cgbpf

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/kushm/kushm/internal/cgroup2"
	"github.com/kushm/kushm/pmu"
)

// openSW opens the software presets the program reads on every CPU.
func openSW(t *testing.T, ncpus int) ([]Event, func()) {
	t.Helper()
	ids := []pmu.PresetID{pmu.SW_PAGE_FAULTS, pmu.SW_CPU_MIGRATIONS}
	evs := []Event{{Preset: uint32(ids[0]), Group: 0, FDs: map[int]int{}}, {Preset: uint32(ids[1]), Group: -1, FDs: map[int]int{}}}
	var rs []*pmu.Reader
	cpus, err := pmu.OnlineCPUs("")
	if err != nil {
		t.Fatal(err)
	}
	for _, cpu := range cpus {
		r, err := pmu.OpenCPU(cpu, ids, &pmu.Options{Group: true})
		if err != nil {
			t.Skipf("per-CPU events: %v", err)
		}
		rs = append(rs, r)
		for k := range ids {
			if fd, _ := r.FD(k); fd >= 0 {
				evs[k].FDs[cpu] = fd
			}
		}
	}
	return evs, func() {
		for _, r := range rs {
			r.Close()
		}
	}
}

// TestChargesCgroup runs known work in a fresh cgroup v2 and checks the
// program charged it at least that work, and that removing the cgroup
// is reported.
func TestChargesCgroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (BPF, cgroup creation)")
	}
	dir, _, err := cgroup2.FindMount("/")
	if err != nil {
		t.Skip(err)
	}
	ncpus, err := possible()
	if err != nil {
		t.Fatal(err)
	}
	evs, done := openSW(t, ncpus)
	defer done()
	c, err := Open(Config{NCPUs: ncpus, Capacity: 1024, Events: evs})
	if err != nil {
		t.Skipf("BPF not available here: %v", err)
	}
	defer c.Close()

	cg := filepath.Join(dir, "kushm-cgbpf-test-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(cg)
	id, err := cgroup2.ID(cg)
	if err != nil {
		t.Fatal(err)
	}
	// The work: a child in the cgroup touches 2000 fresh pages, yields
	// 500 times and spins 50 ms.
	const pages, yields = 2000, 500
	cmd := exec.Command("/bin/sh", "-c", "echo $$ > "+cg+"/cgroup.procs && exec "+os.Args[0]+" -test.run=TestHelperWork")
	cmd.Env = append(os.Environ(), "KUSHM_CGBPF_WORK=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("work: %v: %s", err, out)
	}
	var sum Stat
	found := false
	if err := c.Read(func(k uint64, per []Stat) {
		if k != id {
			return
		}
		found = true
		for _, s := range per {
			for i := range s.Counter {
				sum.Counter[i] += s.Counter[i]
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Fatalf("cgroup %d not charged", id)
	}
	t.Logf("charged: faults %d switches %d runtime %v", sum.Counter[pmu.SW_PAGE_FAULTS], sum.Counter[pmu.SW_CONTEXT_SWITCHES], time.Duration(sum.Counter[15]))
	if sum.Counter[pmu.SW_PAGE_FAULTS] < pages {
		t.Errorf("page faults %d < %d", sum.Counter[pmu.SW_PAGE_FAULTS], pages)
	}
	if sum.Counter[pmu.SW_CONTEXT_SWITCHES] < yields/2 {
		t.Errorf("context switches %d < %d", sum.Counter[pmu.SW_CONTEXT_SWITCHES], yields/2)
	}
	if sum.Counter[15] < uint64(50*time.Millisecond) {
		t.Errorf("runtime %v < 50ms", time.Duration(sum.Counter[15]))
	}
	if err := os.Remove(cg); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		gone := false
		for _, k := range c.Removed() {
			if k == id {
				gone = true
			}
		}
		if gone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("removal of cgroup %d not reported", id)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := c.Forget(id); err != nil {
		t.Fatal(err)
	}
	st, err := c.Stats()
	if err != nil || st.Switches == 0 || st.Removals == 0 {
		t.Fatalf("stats %+v %v", st, err)
	}
}

func TestHelperWork(t *testing.T) {
	if os.Getenv("KUSHM_CGBPF_WORK") == "" {
		t.Skip("helper")
	}
	Work(2000, 500, 50*time.Millisecond)
}

func possible() (int, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/possible")
	if err != nil {
		return 0, err
	}
	l, err := pmu.ParseCPUList(string(b[:len(b)-1]))
	if err != nil || len(l) == 0 {
		return 0, err
	}
	return l[len(l)-1] + 1, nil
}

var sink byte

// Work is the known work of the tests: pages fresh page faults, yields
// sched_yield-like switches (sleeps of 1 µs), and an on-CPU spin.
func Work(pages, yields int, spin time.Duration) {
	runtime.LockOSThread()
	b := make([]byte, pages*os.Getpagesize())
	for i := 0; i < len(b); i += os.Getpagesize() {
		b[i] = 1
	}
	sink = b[len(b)-1]
	for i := 0; i < yields; i++ {
		time.Sleep(time.Microsecond)
	}
	end := time.Now().Add(spin)
	for time.Now().Before(end) {
	}
}
