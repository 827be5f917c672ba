package pmu

// Deltas holds the scaled increase of each preset over an interval, as
// computed by Delta from two reads of one Reader. OK[p] is false when p
// was not counted (or did not run) in the interval.
type Deltas struct {
	V     [NumPresets]uint64
	OK    [NumPresets]bool
	Ratio [NumPresets]float64
}

// DeltasFrom computes Deltas for a reader's presets (ids, as returned by
// Reader.Presets) between two reads prev and cur.
func DeltasFrom(ids []PresetID, prev, cur []Value) Deltas {
	var d Deltas
	for i, id := range ids {
		if id >= NumPresets || i >= len(prev) || i >= len(cur) {
			continue
		}
		d.V[id], d.Ratio[id], d.OK[id] = Delta(prev[i], cur[i])
	}
	return d
}

func (d *Deltas) ratio(num, den PresetID) (float64, bool) {
	if !d.OK[num] || !d.OK[den] || d.V[den] == 0 {
		return 0, false
	}
	return float64(d.V[num]) / float64(d.V[den]), true
}

// IPC is instructions per cycle: TOT_INS / TOT_CYC.
func (d *Deltas) IPC() (float64, bool) { return d.ratio(PAPI_TOT_INS, PAPI_TOT_CYC) }

// CacheMissRatio is the L3 miss ratio: L3_TCM / L3_TCA.
func (d *Deltas) CacheMissRatio() (float64, bool) { return d.ratio(PAPI_L3_TCM, PAPI_L3_TCA) }

// BranchMissRatio is BR_MSP / BR_INS.
func (d *Deltas) BranchMissRatio() (float64, bool) { return d.ratio(PAPI_BR_MSP, PAPI_BR_INS) }

// MPKI is misses (of a miss preset such as PAPI_L1_DCM, PAPI_L2_TCM,
// PAPI_L3_TCM, PAPI_TLB_DM) per thousand instructions.
func (d *Deltas) MPKI(miss PresetID) (float64, bool) {
	if miss >= NumPresets {
		return 0, false
	}
	r, ok := d.ratio(miss, PAPI_TOT_INS)
	return 1000 * r, ok
}

// GHz is the average clock while running: TOT_CYC / task-clock ns.
func (d *Deltas) GHz() (float64, bool) { return d.ratio(PAPI_TOT_CYC, SW_TASK_CLOCK) }
