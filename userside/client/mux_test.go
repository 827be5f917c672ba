package client

import (
	"testing"
	"time"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/pmu"
)

// muxFixture is one CPU of a PMU with fewer counters than events: cycles
// and instructions share group 0 (always on a counter), cache misses
// are alone in group 1 and counted a quarter of the time.
func muxFixture(t0 bool) *CPUSample {
	k := uint64(1)
	if !t0 {
		k = 2
	}
	row := atomicarr.Snapshot{Vals: make([]uint64, pmu.NumPresets)}
	set := func(id pmu.PresetID, v uint64) {
		row.Vals[id] = v * k
		row.Valid |= 1 << id
	}
	set(pmu.PAPI_TOT_CYC, 4000)
	set(pmu.PAPI_TOT_INS, 2000)
	set(pmu.PAPI_L3_TCM, 40)
	mux := atomicarr.Snapshot{Vals: make([]uint64, abi.NumPMUMux)}
	mux.Vals[0], mux.Vals[1] = 1000*k, 1000*k // group 0
	mux.Vals[2], mux.Vals[3] = 1000*k, 250*k  // group 1
	mux.Vals[abi.PMUMuxMap] = 1<<(4*pmu.PAPI_TOT_CYC) | 1<<(4*pmu.PAPI_TOT_INS) | 2<<(4*pmu.PAPI_L3_TCM)
	mux.Valid = 0xf | 1<<abi.PMUMuxMap
	taken := time.Unix(100, 0)
	if !t0 {
		taken = taken.Add(time.Second)
		row.TimeNs = uint64(time.Second)
		mux.TimeNs = uint64(time.Second)
	}
	return &CPUSample{Taken: taken, Rows: []atomicarr.Snapshot{row}, Err: []error{nil},
		Mux: &CPUSample{Taken: taken, Rows: []atomicarr.Snapshot{mux}, Err: []error{nil}}}
}

func TestCPUMultiplexHonest(t *testing.T) {
	c := &Client{}
	st := c.Delta(muxFixture(true), muxFixture(false), nil, nil)
	var cm, cyc *CPUStat
	for i := range st.CPUs {
		switch st.CPUs[i].Metric {
		case MetricName(pmu.PAPI_L3_TCM):
			cm = &st.CPUs[i]
		case MetricName(pmu.PAPI_TOT_CYC):
			cyc = &st.CPUs[i]
		}
	}
	if cm == nil || cm.Fraction == nil || *cm.Fraction != 0.25 || !cm.Scaled {
		t.Fatalf("cache misses: %+v, want fraction 0.25, scaled", cm)
	}
	if cyc == nil || cyc.Fraction == nil || *cyc.Fraction != 1 || cyc.Scaled {
		t.Fatalf("cycles: %+v, want fraction 1", cyc)
	}
	got := map[string]CPURatio{}
	for _, r := range st.Ratios {
		got[r.Name] = r
	}
	if r := got["ipc"]; r.Value == nil || *r.Value != 0.5 {
		t.Errorf("ipc of one group: %+v", r)
	}
	if r := got["mpki"]; r.Value != nil || r.Note == "" {
		t.Errorf("mpki across groups must be refused: %+v", r)
	}
	// A corrupt group map gives no fraction and no ratio, not a panic.
	a, b := muxFixture(true), muxFixture(false)
	b.Mux.Rows[0].Vals[abi.PMUMuxMap] = ^uint64(0)
	st = c.Delta(a, b, nil, nil)
	for _, s := range st.CPUs {
		if s.Fraction != nil {
			t.Errorf("%s: fraction from a corrupt map", s.Metric)
		}
	}
	for _, r := range st.Ratios {
		if r.Value != nil {
			t.Errorf("%s from a corrupt map", r.Name)
		}
	}
}

// TestProcMultiplexHonest: a process whose cache-miss group was counted
// half the interval has fraction 0.5 for it and 1 for its other group.
func TestProcMultiplexHonest(t *testing.T) {
	mk := func(k uint64) Proc {
		p := Proc{PID: 7, Comm: "x"}
		p.Valid = 1<<pmu.PAPI_TOT_CYC | 1<<pmu.PAPI_L3_TCM
		p.Counters[pmu.PAPI_TOT_CYC] = 1000 * k
		p.Counters[pmu.PAPI_L3_TCM] = 10 * k
		p.Mux = &ProcMux{Groups: 1<<(4*pmu.PAPI_TOT_CYC) | 2<<(4*pmu.PAPI_L3_TCM)}
		p.Mux.Enabled[0], p.Mux.Running[0] = 100*k, 100*k
		p.Mux.Enabled[1], p.Mux.Running[1] = 100*k, 50*k
		return p
	}
	c := &Client{}
	st := c.Delta(muxFixture(true), muxFixture(false), []Proc{mk(1)}, []Proc{mk(2)})
	if len(st.Procs) != 1 {
		t.Fatal(st.Procs)
	}
	f := st.Procs[0].Fractions
	if f[MetricName(pmu.PAPI_L3_TCM)] != 0.5 || f[MetricName(pmu.PAPI_TOT_CYC)] != 1 {
		t.Errorf("fractions %v", f)
	}
	// No procs_mux entry: no fraction claimed.
	a, b := mk(1), mk(2)
	a.Mux, b.Mux = nil, nil
	if st := c.Delta(muxFixture(true), muxFixture(false), []Proc{a}, []Proc{b}); st.Procs[0].Fractions != nil {
		t.Errorf("fractions without a procs_mux entry: %v", st.Procs[0].Fractions)
	}
}
