// SPDX-License-Identifier: Apache-2.0

package cgbpf

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/tools/cgwork"
)

func openSWBench(b *testing.B) ([]Event, func()) { return openSW(b, 0) }

// openSW opens the software presets the program reads on every CPU.
func openSW(t testing.TB, ncpus int) ([]Event, func()) {
	t.Helper()
	// A per-CPU software event (cpu-migrations) in the place of a
	// hardware event on a machine with a PMU: read at every switch and
	// charged to a hardware preset's counter (cycles), as the provider
	// charges one. Not to the migrations counter: the migrate program
	// charges that one itself (Open refuses an event there).
	ids := []pmu.PresetID{pmu.SW_CPU_MIGRATIONS}
	evs := []Event{{Preset: uint32(pmu.PAPI_TOT_CYC), Group: 0, FDs: map[int]int{}}}
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
	cgs := cgwork.NewCgroups(t)
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

	cg, id := cgs.Mkdir("kushm-cgbpf-test-" + strconv.Itoa(os.Getpid()))
	// The work: a child started in the cgroup touches 2000 fresh pages,
	// makes 500 pipe round trips and spins 50 ms.
	const pages, yields = 2000, 500
	if err := cgwork.Run(cg, cgwork.Spec{Pages: pages, PingPongs: yields, Spin: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	var sum Stat
	found := false
	if err := c.Read(func(k uint64, per []Stat) {
		if k != id {
			return
		}
		found = true
		for _, s := range per {
			addStat(&sum, &s)
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
	// The event's group times, through the pending part and its
	// flushes: the event was enabled and running while the work ran.
	if sum.Enabled[0] < uint64(50*time.Millisecond) || sum.Running[0] < uint64(50*time.Millisecond) {
		t.Errorf("event group 0: enabled %v, running %v while the cgroup ran ≥ 50ms", time.Duration(sum.Enabled[0]), time.Duration(sum.Running[0]))
	}
	if err := cgs.Remove(cg); err != nil {
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

func TestMain(m *testing.M) {
	cgwork.Main()
	os.Exit(m.Run())
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
