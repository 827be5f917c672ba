package client

import (
	"fmt"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/pmu"
)

// muxGroup returns the event group of preset id in a pmu_mux row (-1:
// not in a group whose times are published) and whether the row has a
// sane map.
func muxGroup(row *atomicarr.Snapshot, id pmu.PresetID) (int, bool) {
	if row == nil || !row.Has(abi.PMUMuxMap) {
		return -1, false
	}
	n := int(row.Vals[abi.PMUMuxMap]>>(4*uint(id))) & 15
	if n > abi.PMUMuxGroups {
		return -1, false // corrupt: nothing is concluded from it
	}
	return n - 1, true
}

// muxFraction is the fraction of the interval preset id was on a counter
// on cpu: Δrunning / Δenabled of its group.
func muxFraction(m0, m1 *CPUSample, cpu int, id pmu.PresetID) (float64, bool) {
	if m0 == nil || m1 == nil || cpu >= len(m0.Rows) || cpu >= len(m1.Rows) || m0.Err[cpu] != nil || m1.Err[cpu] != nil {
		return 0, false
	}
	a, b := &m0.Rows[cpu], &m1.Rows[cpu]
	g, ok := muxGroup(b, id)
	if !ok || g < 0 {
		return 0, false
	}
	if g0, _ := muxGroup(a, id); g0 != g || !a.Has(2*g) || !b.Has(2*g) || !a.Has(2*g+1) || !b.Has(2*g+1) {
		return 0, false
	}
	de, dr := b.Vals[2*g]-a.Vals[2*g], b.Vals[2*g+1]-a.Vals[2*g+1]
	if b.Vals[2*g] < a.Vals[2*g] || b.Vals[2*g+1] < a.Vals[2*g+1] || de == 0 {
		return 0, false
	}
	if dr >= de {
		return 1, true
	}
	return float64(dr) / float64(de), true
}

// cpuRatios are IPC and MPKI of one CPU, given only when both counters
// were counted in one group (or the producer publishes no groups at all:
// then the ratio is given with a note that it cannot be checked).
func cpuRatios(p0, p1 *CPUSample, cpu int, d atomicarr.Delta) []CPURatio {
	var out []CPURatio
	for _, r := range []struct {
		name     string
		num, den pmu.PresetID
		scale    float64
	}{{"ipc", pmu.PAPI_TOT_INS, pmu.PAPI_TOT_CYC, 1}, {"mpki", pmu.PAPI_L3_TCM, pmu.PAPI_TOT_INS, 1000}} {
		n, ok1 := d.Rate(int(r.num))
		m, ok2 := d.Rate(int(r.den))
		if !ok1 || !ok2 {
			continue
		}
		cr := CPURatio{CPU: cpu, Name: r.name}
		var ga, gb int
		var sa, sb bool
		if p1.Mux != nil && cpu < len(p1.Mux.Rows) {
			ga, sa = muxGroup(&p1.Mux.Rows[cpu], r.num)
			gb, sb = muxGroup(&p1.Mux.Rows[cpu], r.den)
		}
		switch {
		case p1.Mux == nil:
			cr.Note = "the producer does not say whether these counters were counted as one group"
		case !sa || !sb || ga < 0 || ga != gb:
			cr.Note = fmt.Sprintf("no ratio: %s and %s were not counted as one group", r.num, r.den)
			out = append(out, cr)
			continue
		}
		if m == 0 {
			cr.Note = fmt.Sprintf("no ratio: %s is 0", r.den)
			out = append(out, cr)
			continue
		}
		v := n / m * r.scale
		cr.Value = &v
		out = append(out, cr)
	}
	return out
}

// procFraction is the fraction of the interval between two reads of a
// process's procs_mux entry that preset id was on a counter.
func procFraction(a, b *ProcMux, id pmu.PresetID) (float64, bool) {
	n := int(b.Groups>>(4*uint(id))) & 15
	if n == 0 || n > abi.CgroupGroups || int(a.Groups>>(4*uint(id)))&15 != n {
		return 0, false
	}
	g := n - 1
	if b.Enabled[g] <= a.Enabled[g] || b.Running[g] < a.Running[g] {
		return 0, false
	}
	de, dr := b.Enabled[g]-a.Enabled[g], b.Running[g]-a.Running[g]
	if dr >= de {
		return 1, true
	}
	return float64(dr) / float64(de), true
}
