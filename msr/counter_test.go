package msr

import (
	"strings"
	"testing"
	"time"
)

func TestRAPLWraparound(t *testing.T) {
	// Package energy: 32-bit counter in 2^-14 J units; at 250 W it wraps
	// every 2^32 / (250 × 2^14) s ≈ 1049 s.
	const unitsPerJoule = 1 << 14
	c := NewCounter(32, 0, 250*unitsPerJoule)
	if p := c.WrapPeriod(); p < 1000*time.Second || p > 1100*time.Second {
		t.Fatalf("wrap period %v", p)
	}
	t0 := time.Unix(1000, 0)
	raws := []uint64{0xFFFF0000, 0xFFFFFF00, 0x00000100, 0x00010000}
	want := []uint64{0, 0xFF00, 0xFF00 + 0x200, 0xFF00 + 0x200 + 0xFF00}
	for i, raw := range raws {
		got, missed := c.Update(raw, t0.Add(time.Duration(i)*time.Second))
		if got != want[i] || missed {
			t.Fatalf("step %d: raw %#x → total %#x missed %v, want %#x", i, raw, got, missed, want[i])
		}
	}
	if c.Wraps != 1 {
		t.Errorf("wraps %d", c.Wraps)
	}
	// A reading after longer than one wrap period: the counter may have
	// wrapped more than once, which nothing can tell; it is flagged.
	got, missed := c.Update(0x00020000, t0.Add(2000*time.Second))
	if !missed || c.Missed != 1 || got != want[3]+0x10000 {
		t.Errorf("late reading: total %#x missed %v", got, missed)
	}
	// Upper bits beyond the width are ignored (reserved bits of the MSR).
	if got, _ := c.Update(0xABCD_0003_0000, t0.Add(2001*time.Second)); got != want[3]+0x20000 {
		t.Errorf("reserved bits leaked: %#x", got)
	}
}

func TestPowercapRangeWrap(t *testing.T) {
	// energy_uj wraps at max_energy_range_uj, not at a power of two.
	c := NewCounter(0, 262143328850+1, 0)
	c.Update(262143328000, time.Unix(0, 0))
	got, missed := c.Update(150, time.Unix(1, 0))
	if got != 850+1+150 || missed {
		t.Errorf("total %d", got)
	}
}

func TestCounter64(t *testing.T) {
	c := NewCounter(64, 0, 0)
	c.Update(^uint64(0)-1, time.Unix(0, 0))
	if got, _ := c.Update(3, time.Unix(1, 0)); got != 5 {
		t.Errorf("64-bit wrap: %d", got)
	}
}

func TestDerived(t *testing.T) {
	// 2.0 GHz TSC over 100 ms; APERF/MPERF = 1.5 → 3.0 GHz effective.
	hz, ok := EffectiveFrequency(200_000_000, 150_000_000, 100_000_000, 100*time.Millisecond)
	if !ok || !near(hz, 3e9) {
		t.Errorf("effective frequency %v", hz)
	}
	if _, ok := EffectiveFrequency(1, 1, 0, time.Second); ok {
		t.Error("frequency without MPERF")
	}
	if pct, ok := BusyPercent(100_000_000, 200_000_000); !ok || pct != 50 {
		t.Errorf("busy %v", pct)
	}
	if w, ok := Watts(25, 500*time.Millisecond); !ok || w != 50 {
		t.Errorf("watts %v", w)
	}
	if c, ok := Celsius(0x88270000, 0x640000, true); !ok || c != 61 {
		t.Errorf("°C %v %v", c, ok)
	}
	if _, ok := Celsius(0x08270000, 0x640000, true); ok {
		t.Error("invalid readout accepted")
	}
	if u := EnergyUnit(0xA0E03); !near(u, 1.0/(1<<14)) {
		t.Errorf("energy unit %v", u)
	}
	if u := PowerUnit(0xA0E03); u != 0.125 {
		t.Errorf("power unit %v", u)
	}
}

func FuzzParseAllowlist(f *testing.F) {
	f.Add("0x10 0x0\n# comment\n0xC0010299 0x0000000000000000 # AMD\n")
	f.Add("0x1A0 0xFFFFFFFF\n")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAllowlist(stringsReader(s))
		if err != nil {
			return
		}
		var b bytesBuffer
		if _, err := a.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		a2, err := ParseAllowlist(stringsReader(b.String()))
		if err != nil {
			t.Fatalf("re-parse of %q: %v", b.String(), err)
		}
		if len(a2.Addrs()) != len(a.Addrs()) {
			t.Fatalf("round trip changed the list")
		}
		for _, addr := range a.Addrs() {
			m1, _ := a.WriteMask(addr)
			m2, _ := a2.WriteMask(addr)
			if m1 != m2 {
				t.Fatalf("mask of %#x: %#x → %#x", addr, m1, m2)
			}
		}
	})
}

type bytesBuffer = strings.Builder

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }
