package msr

import (
	"errors"
	"time"
)

// Measurement is every catalogue entry of one CPU read twice, an
// interval apart: the readings, each counter's increase and rate, and
// the figures derived from them. It is data; cmd/kushm renders it.
type Measurement struct {
	CPU int
	// Interval is the time measured between the two reads.
	Interval time.Duration
	// Entries are in catalogue order (Entries[id] is entry id).
	Entries []Measured
	// Derived holds "tsc_hz", "effective_hz", "busy_pct" and
	// "<NAME>_watts" for the energy counters, when their inputs were read.
	Derived map[string]float64
}

// Measured is one entry of a Measurement.
type Measured struct {
	Entry
	// Readable is false when the entry cannot be read; Err says why (an
	// *UnavailableError, whose Cause completes the sentence).
	Readable bool
	Err      error
	// Reading is the second read (the first when the second failed).
	Reading Reading
	// Delta is a counter's increase over the interval (wrap-around
	// handled), valid when Rate is not nil.
	Delta uint64
	// Rate is a counter's increase per second (watts for energy
	// counters), nil for gauges and when only one read succeeded.
	Rate *float64
}

// energyCounters are the entries whose rate is a power in watts.
var energyCounters = []ID{PKG_ENERGY_STATUS, AMD_PKG_ENERGY, DRAM_ENERGY_STATUS, PP0_ENERGY_STATUS, AMD_CORE_ENERGY}

// Measure reads every catalogue entry on cpu, waits interval (none when
// 0: no rates), reads the readable ones again and derives the effective
// frequency, busy share and power.
func (r *Reader) Measure(cpu int, interval time.Duration) *Measurement {
	cat := Catalogue()
	m := &Measurement{CPU: cpu, Entries: make([]Measured, len(cat)), Derived: map[string]float64{}}
	first := make([]Reading, len(cat))
	t0 := time.Now()
	for i, e := range cat {
		m.Entries[i].Entry = e
		rd, err := r.Read(cpu, e.ID)
		if err != nil {
			m.Entries[i].Err = err
			continue
		}
		first[i], m.Entries[i].Readable = rd, true
	}
	if interval > 0 {
		time.Sleep(interval)
	}
	dt := time.Since(t0)
	m.Interval = dt
	deltas := map[ID]uint64{}
	for i, e := range cat {
		me := &m.Entries[i]
		if !me.Readable {
			continue
		}
		rd, err := r.Read(cpu, e.ID)
		if err != nil {
			rd = first[i]
		}
		me.Reading = rd
		if e.Kind != KindCounter || err != nil || interval <= 0 {
			continue
		}
		c := NewCounter(uint(e.Width), rd.Range, 0)
		c.Update(first[i].Raw, t0)
		d, _ := c.Update(rd.Raw, t0.Add(dt))
		deltas[e.ID] = d
		rate := float64(d) / dt.Seconds()
		if rd.JoulesPerUnit != 0 {
			rate *= rd.JoulesPerUnit
		}
		me.Delta, me.Rate = d, &rate
	}
	if d, ok := deltas[TSC]; ok {
		m.Derived["tsc_hz"] = float64(d) / dt.Seconds()
		if mp, ok := deltas[MPERF]; ok {
			if a, ok := deltas[APERF]; ok {
				if hz, ok := EffectiveFrequency(d, a, mp, dt); ok {
					m.Derived["effective_hz"] = hz
				}
			}
			if p, ok := BusyPercent(mp, d); ok {
				m.Derived["busy_pct"] = p
			}
		}
	}
	for _, id := range energyCounters {
		if me := m.Entries[id]; me.Rate != nil {
			m.Derived[me.Name+"_watts"] = *me.Rate
		}
	}
	return m
}

// Cause is why a measured entry cannot be read: the cause of its
// *UnavailableError, or the error's text.
func (me *Measured) Cause() string {
	var ue *UnavailableError
	if errors.As(me.Err, &ue) {
		return ue.Cause
	}
	if me.Err != nil {
		return me.Err.Error()
	}
	return ""
}
