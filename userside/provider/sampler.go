// SPDX-License-Identifier: Apache-2.0

package provider

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kushm/kushm/internal/cpubpf"
	"github.com/kushm/kushm/msr"
	"github.com/kushm/kushm/pmu"
)

// SamplerMode selects who reads the per-CPU counters at each interval.
type SamplerMode int

const (
	// SamplerAuto (the default): a BPF timer on each CPU where the
	// kernel allows it (root, Linux 6.7 or later, this machine's own
	// /sys), otherwise the daemon reads (SamplerRead), logging why.
	SamplerAuto SamplerMode = iota
	// SamplerBPF: each CPU reads its own counters in a BPF timer pinned
	// to it (internal/cpubpf) into memory the daemon copies: no read(2)
	// per CPU, and no interrupt from the daemon's CPU to the counted one
	// (docs/benchmarks.md, "the daemon at 10 ms"). A row's time is its
	// CPU's sample time, at most one interval before the daemon's tick.
	// Failing to start it is an error.
	SamplerBPF
	// SamplerRead: the daemon reads every CPU's counters with read(2) at
	// its tick; a CPU other than the daemon's own is read through an
	// interrupt to it.
	SamplerRead
)

func (m SamplerMode) String() string {
	switch m {
	case SamplerAuto:
		return "auto"
	case SamplerBPF:
		return "bpf"
	case SamplerRead:
		return "read"
	}
	return fmt.Sprintf("SamplerMode(%d)", int(m))
}

// ParseSamplerMode parses "auto", "bpf" or "read".
func ParseSamplerMode(s string) (SamplerMode, error) {
	for m := SamplerAuto; m <= SamplerRead; m++ {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("%w: sampler %q (auto, bpf or read)", ErrConfig, s)
}

// samplerState is the per-CPU BPF sampler and what was published of it.
type samplerState struct {
	s    *cpubpf.Sampler
	iv   time.Duration // the interval the timers run at
	last []uint64      // per p.cpus index: the time of the row last published (a sample's or a read's)
	seen []bool        // per p.cpus index: the sampler has given a sample of it
	smp  cpubpf.Sample
	cur  int // the p.cpus index smp is of (sampled succeeded), else -1
	// The sampler's slot of preset p.pmuIDs[i] (pmuSlot[i]) and of MSR
	// entry id (msrSlot[id]) on every CPU; -1: none.
	pmuSlot []int
	msrSlot []int
	// reason: why the daemon reads the counters itself ("" with s).
	reason string
	// Restarting stopped timers (rearmSampler): the CPUs whose sample
	// was stale this tick, when the last try started, the wait before
	// the next (ns), whether one runs, and the timers restarted.
	stale     []int
	rearmAt   uint64
	rearmWait atomic.Int64
	rearming  atomic.Bool
	rearmWG   sync.WaitGroup
	restarts  atomic.Uint64
}

// staleSamples is how many intervals a CPU's latest sample may be old
// before the daemon reads that CPU itself (a timer that stopped).
const staleSamples = 3

// rearmEvery is the least time between two tries to restart stopped
// timers (rearmSampler); after a try that restarted none the wait
// doubles, up to rearmMax.
const (
	rearmEvery = 5 * time.Second
	rearmMax   = 5 * time.Minute
)

// openSampler starts the BPF sampler over the per-CPU events the
// readers opened (slot i: preset p.pmuIDs[i]), as cfg.Sampler says.
func (p *Provider) openSampler() error {
	st := &samplerState{last: make([]uint64, len(p.cpus)), seen: make([]bool, len(p.cpus)), cur: -1}
	p.smp = st
	mode := p.cfg.Sampler
	if mode == SamplerAuto {
		switch {
		case p.cfg.Root != "/":
			st.reason = "the daemon reads the counters: the BPF sampler is off with a fixture root (--root)"
			return nil
		case os.Geteuid() != 0:
			st.reason = "the daemon reads the counters: the BPF sampler needs root (CAP_BPF and CAP_PERFMON)"
			return nil
		}
		mode = SamplerBPF
	}
	if mode == SamplerRead {
		st.reason = "the daemon reads the counters (kushm serve --cpu-sampler read)"
		return nil
	}
	// Slots: every preset some CPU counts, then every MSR entry the perf
	// msr PMU serves (the others, /dev/cpu and powercap, stay reads).
	var events []map[int]int
	slot := func(fds map[int]int) int {
		if len(fds) == 0 || len(events) >= cpubpf.Slots {
			return -1
		}
		events = append(events, fds)
		return len(events) - 1
	}
	var cpus []int
	for ci, cpu := range p.cpus {
		if p.pmuR[ci] != nil {
			cpus = append(cpus, cpu)
		}
	}
	st.pmuSlot = make([]int, len(p.pmuIDs))
	for i := range p.pmuIDs {
		fds := map[int]int{}
		for ci, cpu := range p.cpus {
			if r := p.pmuR[ci]; r != nil && r.Err(i) == nil {
				if fd, _ := r.FD(i); fd >= 0 {
					fds[cpu] = fd
				}
			}
		}
		st.pmuSlot[i] = slot(fds)
	}
	st.msrSlot = make([]int, msr.NumMSRs)
	for id := range st.msrSlot {
		fds := map[int]int{}
		for ci, cpu := range p.cpus {
			for _, mid := range p.msrIDs[ci] {
				// An fd only where the perf source served the entry
				// (ReadRaw tried it because the sources before it failed).
				if int(mid) == id {
					if fd := p.msrR.PerfFD(cpu, mid); fd >= 0 {
						fds[cpu] = fd
					}
				}
			}
		}
		st.msrSlot[id] = slot(fds)
	}
	if len(cpus) == 0 {
		st.reason = "the daemon reads the counters: no CPU has counters open"
		return nil
	}
	st.iv = p.Interval()
	s, err := cpubpf.Open(cpubpf.Config{NCPUs: p.rows, CPUs: cpus, Events: events, Interval: st.iv})
	if err != nil {
		return p.samplerFailed(st, err)
	}
	st.s = s
	return nil
}

// samplerFailed is the auto mode's fallback, or the error of mode bpf.
func (p *Provider) samplerFailed(st *samplerState, err error) error {
	if p.cfg.Sampler == SamplerBPF {
		return fmt.Errorf("per-CPU sampler: %w", err)
	}
	st.reason = "the daemon reads the counters: " + err.Error()
	p.cfg.Logf("per-CPU sampler: %s", st.reason)
	return nil
}

// sampled fills p.vals from cpu's latest BPF sample. ok is false when the
// daemon must read cpu itself (direct, no sampler, no complete sample,
// or one older than staleSamples intervals); fresh is false when the
// sample is not newer than the row already published (nothing to
// write). at is the sample's time.
func (p *Provider) sampled(ci, cpu int, now uint64, direct bool) (at uint64, fresh, ok bool) {
	st := p.smp
	if st == nil || st.s == nil {
		return 0, false, false
	}
	st.cur = -1
	if direct {
		return 0, false, false
	}
	if iv := p.Interval(); iv != st.iv {
		if st.s.SetInterval(iv) == nil {
			st.iv = iv
		}
	}
	if err := st.s.Read(cpu, &st.smp); err != nil {
		if errors.Is(err, cpubpf.ErrNotArmed) {
			return 0, false, false // this CPU is the daemon's to read (not a miss)
		}
		if st.seen[ci] || !errors.Is(err, cpubpf.ErrNoSample) {
			p.stats.SamplerMisses++ // (before the first timer fires, no miss)
		}
		return 0, false, false
	}
	// A sample taken after this tick began (at > now) is fresh.
	at = st.smp.TimeNs
	if at < now && now-at > staleSamples*uint64(st.iv) {
		p.stats.SamplerMisses++
		st.stale = append(st.stale, cpu)
		return 0, false, false
	}
	if at <= p.life[ci].revived {
		// Of the events this CPU had before it went offline (hotplug.go):
		// the daemon reads the new ones until a sample of them comes.
		return 0, false, false
	}
	st.cur, st.seen[ci] = ci, true
	if at <= st.last[ci] {
		// Published already, or older than a read published since (a
		// row's time never goes back).
		return at, false, true
	}
	st.last[ci] = at
	for i, id := range p.pmuIDs {
		if k := st.pmuSlot[i]; k >= 0 && st.smp.Valid&(1<<k) != 0 {
			p.vals[i] = pmu.NewValue(id, st.smp.Val[k], st.smp.Enabled[k], st.smp.Running[k])
		} else {
			p.vals[i] = pmu.Value{Preset: id}
		}
	}
	return at, true, true
}

// rearmSampler asks the sampler, in the background, to restart the
// timers of the online CPUs whose samples were stale this tick: a CPU
// that went offline and came back has no timer (the kernel moved it
// away, where it stopped; internal/cpubpf, Rearm). Meanwhile the daemon
// reads that CPU itself. The arming program runs at every switch while
// a try waits for the CPUs to switch, so tries are spaced: rearmEvery,
// doubling while they restart nothing (a timer late on a loaded machine
// is stale without being stopped). close waits for a try in flight.
func (p *Provider) rearmSampler(now uint64) {
	st := p.smp
	if st == nil || st.s == nil || len(st.stale) == 0 {
		return
	}
	stale := append([]int(nil), st.stale...)
	st.stale = st.stale[:0]
	if st.rearmAt != 0 && now-st.rearmAt < uint64(st.rearmWait.Load()) {
		return
	}
	if st.rearming.Load() {
		return
	}
	online := p.onlineNow(now)
	stale = slices.DeleteFunc(stale, func(cpu int) bool { return !slices.Contains(online, cpu) })
	if len(stale) == 0 {
		return
	}
	if st.rearmAt == 0 {
		st.rearmWait.Store(int64(rearmEvery))
	}
	st.rearmAt = now
	st.rearming.Store(true)
	st.rearmWG.Add(1)
	s, logf := st.s, p.cfg.Logf
	go func() {
		defer st.rearmWG.Done()
		defer st.rearming.Store(false)
		started, err := s.Rearm(stale)
		if err != nil {
			logf("per-CPU sampler: %v", err)
		}
		if len(started) == 0 {
			st.rearmWait.Store(min(2*st.rearmWait.Load(), int64(rearmMax)))
			return
		}
		st.rearmWait.Store(int64(rearmEvery))
		st.restarts.Add(uint64(len(started)))
		logf("per-CPU sampler: started the timers of CPUs %v (they had none: offline meanwhile, or since the start)", started)
	}()
}

// readAt records that the daemon read CPU ci's counters itself at now.
func (p *Provider) readAt(ci int, now uint64) {
	if st := p.smp; st != nil && ci < len(st.last) {
		st.last[ci] = now
	}
}

// sampledMSR fills p.mslots with CPU ci's MSR entries from the sample
// sampled took of it this tick, when every entry is in it (perf msr
// events); otherwise the daemon reads them all (ok false).
func (p *Provider) sampledMSR(ci int) (valid uint64, ok bool) {
	st := p.smp
	if st == nil || st.s == nil || st.cur != ci {
		return 0, false
	}
	for _, id := range p.msrIDs[ci] {
		k := st.msrSlot[id]
		if k < 0 || st.smp.Valid&(1<<k) == 0 {
			return 0, false
		}
		p.mslots[id] = st.smp.Val[k] + base(p.life[ci].msrBase, int(id))
		valid |= 1 << id
	}
	return valid, true
}

// Sampler says who reads the per-CPU counters: "bpf" (a BPF timer on
// each CPU) or why the daemon reads them.
func (p *Provider) Sampler() string {
	if p.smp == nil || p.smp.s == nil {
		if p.smp != nil {
			return p.smp.reason
		}
		return "the daemon reads the counters"
	}
	return "bpf: each CPU reads its own counters in a BPF timer (no cross-CPU reads)"
}

func (st *samplerState) close() {
	if st != nil && st.s != nil {
		st.rearmWG.Wait()
		st.s.Close()
		st.s = nil
	}
}
