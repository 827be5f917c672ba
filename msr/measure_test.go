package msr

import (
	"errors"
	"math"
	"testing"
	"time"
)

// TestMeasure: the two reads, the counters' deltas and rates, and the
// derived figures, against counters that move by known amounts.
func TestMeasure(t *testing.T) {
	o, fake := fixture(t, "intel-server")
	o.Sources = []string{"dev"}
	const dTSC, dMPERF, dAPERF, dEnergy = 3_000_000, 1_500_000, 2_250_000, 16384 // 1 J at 2^-14 J/unit
	fake.tick = map[uint32]uint64{0x10: dTSC, 0xE7: dMPERF, 0xE8: dAPERF, 0x611: dEnergy}
	r := Open(o)
	defer r.Close()
	m := r.Measure(0, 5*time.Millisecond)
	if m.CPU != 0 || m.Interval < 5*time.Millisecond || len(m.Entries) != NumMSRs {
		t.Fatalf("cpu %d interval %v entries %d", m.CPU, m.Interval, len(m.Entries))
	}
	for id, want := range map[ID]uint64{TSC: dTSC, MPERF: dMPERF, APERF: dAPERF} {
		me := m.Entries[id]
		if !me.Readable || me.Delta != want || me.Rate == nil || !near(*me.Rate, float64(want)/m.Interval.Seconds()) {
			t.Errorf("%s: readable %v delta %d rate %v, want delta %d", me.Name, me.Readable, me.Delta, me.Rate, want)
		}
	}
	if hz := m.Derived["tsc_hz"]; !near(hz, dTSC/m.Interval.Seconds()) {
		t.Errorf("tsc_hz %v", hz)
	}
	if r := m.Derived["effective_hz"] / m.Derived["tsc_hz"]; !near(r, float64(dAPERF)/dMPERF) {
		t.Errorf("effective/tsc %v, want ΔAPERF/ΔMPERF", r)
	}
	if p := m.Derived["busy_pct"]; !near(p, 50) {
		t.Errorf("busy %v%%, want 50", p)
	}
	if w := m.Derived["PKG_ENERGY_STATUS_watts"] * m.Interval.Seconds(); math.Abs(w-1) > 1e-9 {
		t.Errorf("package energy over the interval %v J, want 1", w)
	}
	// A gauge has no rate; an entry that cannot be read says why.
	if me := m.Entries[THERM_STATUS]; !me.Readable || me.Rate != nil {
		t.Errorf("THERM_STATUS: %+v", me)
	}
	me := m.Entries[AMD_PKG_ENERGY]
	if me.Readable || !errors.Is(me.Err, ErrNotAvailable) || me.Cause() == "" {
		t.Errorf("AMD_PKG_ENERGY on Intel: readable %v err %v cause %q", me.Readable, me.Err, me.Cause())
	}
	// No interval: readings, no rates.
	m = r.Measure(0, 0)
	if m.Entries[TSC].Rate != nil || len(m.Derived) != 0 {
		t.Errorf("rates without an interval: %v %v", m.Entries[TSC].Rate, m.Derived)
	}
}
