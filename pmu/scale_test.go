package pmu

import (
	"math"
	"testing"
)

func TestScaleMultiplexed(t *testing.T) {
	for _, c := range []struct {
		value, enabled, running uint64
		scaled                  uint64
		ratio                   float64
	}{
		{1000, 100, 100, 1000, 1},
		{1000, 400, 100, 4000, 0.25},                 // counted a quarter of the time
		{333, 300, 200, 499, 2.0 / 3},                // truncates: 333*300/200 = 499.5
		{1000, 100, 0, 0, 0},                         // never scheduled
		{1000, 0, 0, 1000, 1},                        // times not tracked (root cgroup events)
		{1 << 62, 1 << 40, 1 << 39, 1 << 63, 0.5},    // needs 128-bit intermediate
		{math.MaxUint64, 4, 1, math.MaxUint64, 0.25}, // saturates
		{50, 100, 120, 50, 1},                        // running > enabled (clock skew): not scaled down
	} {
		s, r := Scale(c.value, c.enabled, c.running)
		if s != c.scaled || math.Abs(r-c.ratio) > 1e-12 {
			t.Errorf("Scale(%d, %d, %d) = %d, %v; want %d, %v", c.value, c.enabled, c.running, s, r, c.scaled, c.ratio)
		}
	}
}

func TestDeltaScalesTheInterval(t *testing.T) {
	// First interval: not multiplexed. Second: half the time on a counter.
	a := Value{OK: true, Raw: 0, Enabled: 0, Running: 0}
	b := Value{OK: true, Raw: 1000, Enabled: 1000, Running: 1000}
	c := Value{OK: true, Raw: 1500, Enabled: 2000, Running: 1500}
	if d, r, ok := Delta(a, b); !ok || d != 1000 || r != 1 {
		t.Errorf("Delta(a, b) = %d %v %v", d, r, ok)
	}
	// Totals scaling would give 1500*2000/1500 - 1000 = 1000 too, but the
	// interval alone ran 500 of 1000 ns: 500 counted → 1000 estimated.
	if d, r, ok := Delta(b, c); !ok || d != 1000 || r != 0.5 {
		t.Errorf("Delta(b, c) = %d %v %v", d, r, ok)
	}
	// Cgroup events whose times the kernel does not track.
	if d, r, ok := Delta(Value{OK: true, Raw: 10}, Value{OK: true, Raw: 25}); !ok || d != 15 || r != 1 {
		t.Errorf("untracked times: %d %v %v", d, r, ok)
	}
	// Not running in the interval.
	if _, _, ok := Delta(c, Value{OK: true, Raw: 1500, Enabled: 3000, Running: 1500}); ok {
		t.Error("delta of an event that did not run")
	}
}

func TestDerived(t *testing.T) {
	ids := []PresetID{PAPI_TOT_CYC, PAPI_TOT_INS, PAPI_L3_TCA, PAPI_L3_TCM, PAPI_L1_DCM, SW_TASK_CLOCK}
	prev := make([]Value, len(ids))
	cur := []Value{
		{OK: true, Raw: 2000, Enabled: 10, Running: 5}, // multiplexed: 4000 cycles
		{OK: true, Raw: 6000, Enabled: 10, Running: 10},
		{OK: true, Raw: 100, Enabled: 10, Running: 10},
		{OK: true, Raw: 25, Enabled: 10, Running: 10},
		{OK: true, Raw: 60, Enabled: 10, Running: 10},
		{OK: true, Raw: 2000, Enabled: 10, Running: 10},
	}
	d := DeltasFrom(ids, prev, cur)
	if v, ok := d.IPC(); !ok || v != 1.5 {
		t.Errorf("IPC %v %v", v, ok)
	}
	if v, ok := d.CacheMissRatio(); !ok || v != 0.25 {
		t.Errorf("miss ratio %v %v", v, ok)
	}
	if v, ok := d.MPKI(PAPI_L1_DCM); !ok || v != 10 {
		t.Errorf("L1 MPKI %v %v", v, ok)
	}
	if v, ok := d.GHz(); !ok || v != 2 {
		t.Errorf("GHz %v %v", v, ok)
	}
	if _, ok := d.BranchMissRatio(); ok {
		t.Error("branch miss ratio without branch counters")
	}
}
