// SPDX-License-Identifier: Apache-2.0

package provider

import (
	"slices"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/msr"
	"github.com/kushm/kushm/pmu"
)

// CPU hotplug. A CPU-wide perf event of a CPU that goes offline stops
// counting and never counts again, even once the CPU is back and the
// event enabled again (seen in the 6.1 and 6.12 guests): reads still succeed,
// with the same value and the same time enabled. So a CPU's events are
// dead when the time enabled of its first counting preset stops growing
// while readings go on (deadAfter). Its rows are then n/a (valid 0) as
// long as the CPU is offline; once it is online again (checked at most
// every reviveEvery), its events are opened again, the BPF programs
// that read them (the per-CPU sampler, the cgroups program) get the new
// descriptors (and the perf cgroup events of --cgroup-mode perf are
// opened again), and its rows go on from the values last published: the
// counts of new events start at 0, so the provider adds those values
// (base) to keep every published counter from going back.
const (
	// deadAfter: how long the time enabled may stand still across
	// readings before the events count as dead (a CPU-wide event's time
	// enabled grows whenever the CPU is online, idle included).
	deadAfter = 50 * time.Millisecond
	// reviveEvery: the least time between two tries to open a CPU's
	// events again (each reads the online CPU list).
	reviveEvery = time.Second
)

// cpuLife is one CPU's hotplug state (per p.cpus index).
type cpuLife struct {
	enLast  uint64 // time enabled of the CPU's first counting preset, last seen
	enAt    uint64 // the reading's time when it last grew
	down    bool   // dead events or none, the CPU offline (or not reopened yet): rows n/a
	opened  bool   // its events were opened once (false: offline since the start)
	naDone  bool   // its rows were written n/a since it went down
	tryAt   uint64 // the last try to open its events again
	revived uint64 // when its events were last opened again (samples before are the old events')
	// The values last published as valid (the rows may be n/a by the
	// time the events are found dead: a failed read publishes none), per
	// preset id, per pmu_mux slot, per MSR id.
	pmuLast [pmu.NumPresets]uint64
	muxLast [abi.PMUMuxMap]uint64
	msrLast [msr.NumMSRs]uint64
	// What the rows last showed when the events were found dead, added
	// to the new events' counts: per preset id, per pmu_mux slot, per MSR
	// id (those the perf msr PMU serves only: the others are absolute).
	pmuBase []uint64
	muxBase []uint64
	msrBase []uint64
}

// keep records the valid values of a row just published.
func keep(last []uint64, vals []uint64, valid uint64) {
	for id := range last {
		if id < len(vals) && id < 64 && valid&(1<<id) != 0 {
			last[id] = vals[id]
		}
	}
}

// dead records a reading of CPU ci's counters at at (p.vals, when read)
// and says whether its events stopped counting: the time enabled of its
// first counting preset stood still, or no reading succeeded, for
// deadAfter and two intervals. A reading with no counting preset (a
// hardware group that never got a counter) says nothing either way. The
// first time, the CPU's bases become what its rows show: the last
// values its old events gave.
func (p *Provider) dead(ci int, at uint64, read bool) bool {
	l := &p.life[ci]
	if read {
		i := slices.IndexFunc(p.vals, func(v pmu.Value) bool { return v.OK })
		if i < 0 {
			return false
		}
		if v := p.vals[i]; l.enAt == 0 || v.Enabled != l.enLast || at < l.enAt {
			l.enLast, l.enAt = v.Enabled, at
			return false
		}
	}
	if l.enAt == 0 || at < l.enAt {
		l.enAt = at
		return false
	}
	if at-l.enAt <= uint64(deadAfter) || at-l.enAt <= 2*uint64(p.Interval()) {
		return false
	}
	if !l.down {
		p.rebase(ci, p.cpus[ci])
		l.down = true
	}
	return true
}

// revive opens the events of CPU ci, found dead, again when the CPU is
// online (at most every reviveEvery) and reports whether it did; until
// it does, the CPU's rows are n/a.
func (p *Provider) revive(ci, cpu int, now uint64) bool {
	l := &p.life[ci]
	if l.tryAt != 0 && now-l.tryAt < uint64(reviveEvery) {
		return false
	}
	l.tryAt = now
	if !slices.Contains(p.onlineNow(now), cpu) {
		return false
	}
	r, err := pmu.OpenCPU(cpu, p.pmuIDs, &pmu.Options{System: p.sys, Group: true})
	if err != nil {
		return false
	}
	old := p.pmuR[ci]
	p.pmuR[ci] = r
	p.planMux(ci, r)
	if p.msrR != nil && l.opened {
		p.msrR.ForgetCPU(cpu)
		for _, id := range p.msrIDs[ci] {
			_, _, _ = p.msrR.ReadRaw(cpu, id) // opens the perf msr events again
		}
	} else if p.msrR != nil {
		// Offline since the start: which entries read here is found now.
		for _, e := range msr.Catalogue() {
			if _, _, err := p.msrR.ReadRaw(cpu, e.ID); err == nil {
				p.msrIDs[ci] = append(p.msrIDs[ci], e.ID)
			}
		}
	}
	if st := p.smp; st != nil && st.s != nil {
		for i, k := range st.pmuSlot {
			if fd, _ := r.FD(i); k >= 0 && fd >= 0 {
				_ = st.s.SetEvent(k, cpu, fd)
			}
		}
		for id, k := range st.msrSlot {
			if k < 0 || p.msrR == nil {
				continue
			}
			if fd := p.msrR.PerfFD(cpu, msr.ID(id)); fd >= 0 {
				_ = st.s.SetEvent(k, cpu, fd)
			}
		}
	}
	if cg := p.cg; cg != nil && cg.bpf != nil {
		for k, i := range cg.evIdx {
			if fd, _ := r.FD(i); fd >= 0 {
				_ = cg.bpf.SetEvent(k, cpu, fd)
			}
		}
	}
	if cg := p.cg; cg != nil && len(cg.perf) > 0 {
		p.reopenCgroupPerf(ci, cpu)
	}
	if st := p.smp; st != nil && st.s != nil && !l.opened {
		// Its timer was never armed: the next rearmSampler arms it.
		st.stale = append(st.stale, cpu)
	}
	if old != nil {
		old.Close() // the BPF maps held their own references until replaced
	}
	what := "back online: its counters were opened again"
	if !l.opened {
		what = "online: its counters were opened (it was offline when the daemon started)"
	}
	l.down, l.naDone, l.opened, l.enAt, l.revived = false, false, true, 0, now
	p.stats.CPURevivals++
	p.cfg.Logf("cpu %d is %s", cpu, what)
	return true
}

// onlineNow is the online CPUs, read at most every reviveEvery (one read
// serves every CPU that is down).
func (p *Provider) onlineNow(now uint64) []int {
	if p.onlineAt == 0 || now-p.onlineAt >= uint64(reviveEvery) {
		p.onlineAt = now
		if cpus, err := pmu.OnlineCPUs(p.cfg.Root); err == nil {
			p.online = cpus
		}
	}
	return p.online
}

// publishNA writes CPU ci's rows as n/a, once after it went down (the
// rows' time is then when that happened).
func (p *Provider) publishNA(ci, cpu int, now uint64) {
	l := &p.life[ci]
	if l.naDone {
		return
	}
	l.naDone = true
	clear(p.slots)
	_ = p.pmuArr.Update(cpu, now, 0, p.slots)
	if p.muxArr != nil {
		clear(p.muxSlots[:])
		_ = p.muxArr.Update(cpu, now, 0, p.muxSlots[:])
	}
	if p.msrR != nil {
		clear(p.mslots)
		_ = p.msrArr.Update(cpu, now, 0, p.mslots)
	}
}

// rebase sets CPU ci's bases to the values its rows last showed (they
// include the bases of an earlier revival).
func (p *Provider) rebase(ci, cpu int) {
	l := &p.life[ci]
	l.pmuBase = slices.Clone(l.pmuLast[:])
	l.muxBase = slices.Clone(l.muxLast[:])
	l.msrBase = slices.Clone(l.msrLast[:])
	for id := range l.msrBase {
		if p.msrR == nil || p.msrR.PerfFD(cpu, msr.ID(id)) < 0 {
			l.msrBase[id] = 0 // an absolute value, not a count since open
		}
	}
}
