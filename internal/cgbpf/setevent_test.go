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

// TestSetEventNoWrap replaces the event of every CPU with a fresh one,
// as the provider does for a CPU back online (a CPU-wide event of a CPU
// that went offline never counts again), while a cgroup runs work: the
// fresh event's count starts far below the old one's, and the program
// must not charge that drop as a delta (it would wrap to about 2^64).
// The event is task-clock (per CPU: wall time on it, large counts),
// charged to the cycles counter as openSW does.
func TestSetEventNoWrap(t *testing.T) {
	cgs := cgwork.NewCgroups(t)
	ncpus, err := possible()
	if err != nil {
		t.Fatal(err)
	}
	cpus, err := pmu.OnlineCPUs("")
	if err != nil {
		t.Fatal(err)
	}
	open := func() ([]*pmu.Reader, map[int]int) {
		var rs []*pmu.Reader
		fds := map[int]int{}
		for _, cpu := range cpus {
			r, err := pmu.OpenCPU(cpu, []pmu.PresetID{pmu.SW_TASK_CLOCK}, &pmu.Options{Group: true})
			if err != nil {
				t.Skipf("per-CPU events: %v", err)
			}
			rs = append(rs, r)
			if fd, _ := r.FD(0); fd >= 0 {
				fds[cpu] = fd
			}
		}
		return rs, fds
	}
	closeAll := func(rs []*pmu.Reader) {
		for _, r := range rs {
			r.Close()
		}
	}
	old, fds := open()
	c, err := Open(Config{NCPUs: ncpus, Capacity: 1024, Events: []Event{{Preset: uint32(pmu.PAPI_TOT_CYC), Group: 0, FDs: fds}}})
	if err != nil {
		closeAll(old)
		t.Skipf("BPF not available here: %v", err)
	}
	defer c.Close()
	dir, id := cgs.Mkdir("kushm-cgbpf-setevent-" + strconv.Itoa(os.Getpid()))
	// charged: the cgroup's count, and every row's (the idle row 0
	// included: the first switch after the change may be anyone's).
	charged := func() (cg, all uint64) {
		if err := c.Read(func(k uint64, per []Stat) {
			for _, s := range per {
				all += s.Counter[pmu.PAPI_TOT_CYC]
				if k == id {
					cg += s.Counter[pmu.PAPI_TOT_CYC]
				}
			}
		}); err != nil {
			t.Fatal(err)
		}
		return cg, all
	}
	work := cgwork.Spec{PingPongs: 500, Spin: 30 * time.Millisecond}
	if err := cgwork.Run(dir, work); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the old events' counts grow well past the new ones'
	before, allBefore := charged()
	fresh, fds2 := open()
	defer closeAll(fresh)
	for cpu, fd := range fds2 {
		if err := c.SetEvent(0, cpu, fd); err != nil {
			t.Fatal(err)
		}
	}
	closeAll(old)
	if err := cgwork.Run(dir, work); err != nil {
		t.Fatal(err)
	}
	after, allAfter := charged()
	// A delta charged after the change may cover time before it (an idle
	// CPU is charged at its next switch, which can be seconds later), so
	// the bound is loose: an hour per CPU. A wrapped delta is ~1.8e19 ns,
	// 10^6 times more.
	limit := uint64(time.Hour) * uint64(len(cpus))
	t.Logf("task-clock charged to the cgroup: %v, then %v more; to every row: %v more (limit %v)",
		time.Duration(before), time.Duration(after-before), time.Duration(allAfter-allBefore), time.Duration(limit))
	if before == 0 {
		t.Fatal("nothing charged before the change")
	}
	if after <= before {
		t.Errorf("cgroup charged %d before the change, %d after: want growth", before, after)
	}
	if allAfter-allBefore > limit {
		t.Errorf("every row: %d more since the change, want at most %d (a count that went back charged as a delta)", allAfter-allBefore, limit)
	}
	if err := c.SetEvent(8, 0, fds2[cpus[0]]); err == nil {
		t.Error("SetEvent of slot 8 succeeded (8 slots: 0-7)")
	}
}
