package provider

import (
	"unsafe"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/pmu"
)

// The pmu_mux section: for each CPU, how much of the time each event
// group of its pmu row was really on a counter, so that readers mark
// scaled (multiplexed) values and derive ratios only within one group.

// planMux assigns the event groups of cpus[ci]'s reader to pmu_mux
// groups (in reader order; an event read on its own is its own group).
// Groups beyond abi.PMUMuxGroups get no times: their presets' map
// nibble stays 0 ("not known"), and readers do not mark or pair them.
func (p *Provider) planMux(ci int, r *pmu.Reader) {
	grp := r.GroupSlots(abi.PMUMuxGroups)
	var m uint64
	for i, id := range p.pmuIDs {
		if grp[i] >= 0 {
			m |= uint64(grp[i]+1) << (4 * uint(id))
		}
	}
	p.muxGroup[ci], p.muxMap[ci] = grp, m
}

// sampleMux writes cpus[ci]'s pmu_mux row from the values the pmu row
// was just made of (p.vals, when read).
func (p *Provider) sampleMux(ci, cpu int, now uint64, read bool) {
	if p.muxArr == nil || p.pmuR[ci] == nil {
		return
	}
	clear(p.muxSlots[:])
	var valid uint64
	for i, v := range p.vals {
		if !read {
			break
		}
		g := p.muxGroup[ci][i]
		if g < 0 || !v.OK {
			continue
		}
		mb := p.life[ci].muxBase
		p.muxSlots[2*g], p.muxSlots[2*g+1] = v.Enabled+base(mb, 2*g), v.Running+base(mb, 2*g+1)
		valid |= 3 << (2 * g)
	}
	p.muxSlots[abi.PMUMuxMap] = p.muxMap[ci]
	valid |= 1 << abi.PMUMuxMap
	_ = p.muxArr.Update(cpu, now, valid, p.muxSlots[:])
	keep(p.life[ci].muxLast[:], p.muxSlots[:], valid)
}

// addProcMux inserts the procs_mux node of a process given hardware
// counters: the group of each preset (up to abi.CgroupGroups groups; a
// preset beyond them has no published times and its nibble stays 0).
func (p *Provider) addProcMux(pid int, w *watched) {
	if p.procsMux == nil {
		return
	}
	w.grp = w.hw.GroupSlots(abi.CgroupGroups)
	var d abi.ProcMuxData
	for i, id := range w.hwIDs {
		if s := w.grp[i]; s >= 0 {
			d.Groups |= uint64(s+1) << (4 * uint(id))
		}
	}
	data := (*[unsafe.Sizeof(abi.ProcMuxData{})]byte)(unsafe.Pointer(&d))[:]
	_ = p.procsMux.Insert(uint64(pid), data, nil) // full: the process's times are not published
}

// writeProcMux writes the times of a process's event groups from its
// last read (w.vals).
func (p *Provider) writeProcMux(pid int, w *watched) {
	if p.procsMux == nil || w.grp == nil || !p.procsMux.Has(uint64(pid)) {
		return
	}
	var words [unsafe.Sizeof(abi.ProcMux{}) / 8]uint64
	for i, v := range w.vals {
		if g := w.grp[i]; g >= 0 && v.OK {
			words[g], words[abi.CgroupGroups+g] = v.Enabled, v.Running
		}
	}
	_ = p.procsMux.UpdateWords(uint64(pid), 0, words[:])
}
