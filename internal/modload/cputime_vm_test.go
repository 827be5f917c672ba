package modload

import (
	"testing"
	"time"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/tools/vmtest"
)

// TestVMCPUTime: the module publishes each CPU's busy, idle, iowait and
// steal time from kcpustat (idle from the tick-sched counters, as
// /proc/stat does): every slot valid, busy = user + system, and over half
// a second the four advance by about the elapsed time on every CPU.
func TestVMCPUTime(t *testing.T) {
	vmtest.Require(t)
	load(t, map[string]string{"interval_ms": "20"})
	r := open(t, devPath, shm.Options{})
	a, err := atomicarr.Open(r, abi.SecNameCPUTime)
	if err != nil {
		t.Fatal(err)
	}
	snap := func() []atomicarr.Snapshot {
		out := make([]atomicarr.Snapshot, a.Rows())
		for cpu := range out {
			if err := a.Snapshot(cpu, &out[cpu]); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	time.Sleep(100 * time.Millisecond)
	s0 := snap()
	start := time.Now()
	time.Sleep(500 * time.Millisecond)
	s1 := snap()
	elapsed := time.Since(start)
	for cpu := range s1 {
		b, a := s1[cpu], s0[cpu]
		if b.TimeNs == 0 {
			continue // not a possible-and-online CPU
		}
		if b.Valid != 1<<abi.NumCPUTime-1 {
			t.Fatalf("cpu %d: valid %#x", cpu, b.Valid)
		}
		if b.Vals[abi.CPUTimeBusy] != b.Vals[abi.CPUTimeUser]+b.Vals[abi.CPUTimeSystem] {
			t.Errorf("cpu %d: busy %d != user %d + system %d", cpu, b.Vals[abi.CPUTimeBusy], b.Vals[abi.CPUTimeUser], b.Vals[abi.CPUTimeSystem])
		}
		var sum time.Duration
		for _, slot := range []int{abi.CPUTimeBusy, abi.CPUTimeIdle, abi.CPUTimeIOWait, abi.CPUTimeSteal} {
			if b.Vals[slot] < a.Vals[slot] {
				t.Errorf("cpu %d slot %d went back: %d -> %d", cpu, slot, a.Vals[slot], b.Vals[slot])
			}
			sum += time.Duration(b.Vals[slot] - a.Vals[slot])
		}
		// The sampling work runs every 20 ms; the tick accounts busy
		// time at HZ resolution.
		if sum < elapsed/2 || sum > elapsed*3/2+100*time.Millisecond {
			t.Errorf("cpu %d: busy+idle+iowait+steal advanced %v over %v", cpu, sum, elapsed)
		}
		t.Logf("cpu %d: busy %v idle %v iowait %v steal %v over %v", cpu,
			time.Duration(b.Vals[abi.CPUTimeBusy]-a.Vals[abi.CPUTimeBusy]), time.Duration(b.Vals[abi.CPUTimeIdle]-a.Vals[abi.CPUTimeIdle]),
			time.Duration(b.Vals[abi.CPUTimeIOWait]-a.Vals[abi.CPUTimeIOWait]), time.Duration(b.Vals[abi.CPUTimeSteal]-a.Vals[abi.CPUTimeSteal]), elapsed)
	}
}
