// SPDX-License-Identifier: Apache-2.0

// Package cgbpf loads the per-cgroup charging program (bpf/cgroups.bpf.c):
// a tp_btf sched_switch program that charges the outgoing task's cgroup
// with the on-CPU time, one context switch and the deltas of per-CPU perf
// events since the previous switch on that CPU, into a per-CPU hash keyed
// by cgroup v2 id. No file descriptor per cgroup per CPU: page faults
// are the task's own counters (read through BTF), hardware counters the
// provider's own per-CPU events, one per preset per CPU.
//
// Errors: Open fails with the loader's error (no BTF, no CAP_BPF and
// CAP_PERFMON, a kernel without tp_btf) wrapped "load cgroup counter: %w";
// the provider then leaves the cgroups section empty and says why in its
// info section. A Counter is not safe for concurrent use; it owns its
// maps and links until Close.
package cgbpf

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Layout of the program's value (struct cg_stat).
const (
	Counters  = 16 // pmu preset ids 0..14, on-CPU ns at 15
	Groups    = 4  // event groups whose enabled/running times are kept
	MaxEvents = 8  // per-CPU events read at each switch
	// Overflow is the key charged when the map is full.
	Overflow = ^uint64(0)
	// Idle is the key the idle task (pid 0) is charged to.
	Idle    = 0
	noGroup = 0xff
)

// Stat is one CPU's counts of one cgroup.
type Stat = cgroupsCgStat

// Event is one per-CPU perf event the program reads at every switch.
type Event struct {
	Preset uint32 // counter index it is charged to (pmu preset id)
	// Group is the index (0..Groups-1) of the event group whose
	// enabled/running times this event carries, -1 for none (only one
	// event of a group needs to carry them).
	Group int
	FDs   map[int]int // cpu -> perf event fd (owned by the caller)
}

// Config configures Open.
type Config struct {
	NCPUs    int // possible CPUs (the per-CPU slots of the values)
	Capacity int // cgroups the map holds (the overflow row included)
	Events   []Event
}

// Counters of the program itself.
type ProgStats struct {
	Switches, Full, ReadErrors, Removals uint64
}

// Counter is the loaded, attached program.
type Counter struct {
	objs  cgroupsObjects
	links []link.Link
	ncpus int
	keys  []uint64
	vals  []Stat
}

// Open loads the program with cfg's events and attaches it.
func Open(cfg Config) (*Counter, error) {
	c, err := open(cfg)
	if err != nil {
		return nil, fmt.Errorf("load cgroup counter: %w", err)
	}
	return c, nil
}

func open(cfg Config) (*Counter, error) {
	if len(cfg.Events) > MaxEvents {
		return nil, fmt.Errorf("%d events, at most %d", len(cfg.Events), MaxEvents)
	}
	if cfg.NCPUs <= 0 || cfg.Capacity < 2 {
		return nil, errors.New("bad configuration: no CPUs or capacity < 2")
	}
	possible, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, err
	}
	if possible != cfg.NCPUs {
		return nil, fmt.Errorf("%d possible CPUs, the kernel says %d", cfg.NCPUs, possible)
	}
	spec, err := loadCgroups()
	if err != nil {
		return nil, err
	}
	var preset, group [MaxEvents]uint32
	for k, e := range cfg.Events {
		preset[k] = e.Preset
		group[k] = noGroup
		if e.Group >= 0 && e.Group < Groups {
			group[k] = uint32(e.Group)
		}
	}
	for name, v := range map[string]any{"nevents": uint32(len(cfg.Events)), "ev_preset": preset, "ev_group": group} {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("set %s: %w", name, err)
		}
	}
	spec.Maps["cgstats"].MaxEntries = uint32(cfg.Capacity)
	c := &Counter{ncpus: cfg.NCPUs}
	if err := spec.LoadAndAssign(&c.objs, nil); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	arrays := []*ebpf.Map{c.objs.Ev0, c.objs.Ev1, c.objs.Ev2, c.objs.Ev3, c.objs.Ev4, c.objs.Ev5, c.objs.Ev6, c.objs.Ev7}
	for k, e := range cfg.Events {
		for cpu, fd := range e.FDs {
			if cpu < 0 || cpu >= cfg.NCPUs {
				continue
			}
			if err := arrays[k].Put(uint32(cpu), uint32(fd)); err != nil {
				return nil, fmt.Errorf("event %d cpu %d: %w", k, cpu, err)
			}
		}
	}
	zero := make([]Stat, cfg.NCPUs)
	if err := c.objs.Cgstats.Put(Overflow, zero); err != nil {
		return nil, fmt.Errorf("overflow row: %w", err)
	}
	for _, p := range []*ebpf.Program{c.objs.OnSwitch, c.objs.OnRmdir} {
		l, err := link.AttachTracing(link.TracingOptions{Program: p})
		if err != nil {
			return nil, fmt.Errorf("attach %s: %w", p, err)
		}
		c.links = append(c.links, l)
	}
	ok = true
	return c, nil
}

// Read calls fn with every cgroup id in the map and its per-CPU values
// (valid only during the call). It reads the map in batches.
func (c *Counter) Read(fn func(id uint64, perCPU []Stat)) error {
	const batch = 256
	if c.keys == nil {
		c.keys = make([]uint64, batch)
		c.vals = make([]Stat, batch*c.ncpus)
	}
	var cur ebpf.MapBatchCursor
	for {
		n, err := c.objs.Cgstats.BatchLookup(&cur, c.keys, c.vals, nil)
		for i := 0; i < n; i++ {
			fn(c.keys[i], c.vals[i*c.ncpus:(i+1)*c.ncpus])
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read cgroup counters: %w", err)
		}
	}
}

// Removed returns the ids of the cgroups removed since the last call and
// forgets them.
func (c *Counter) Removed() []uint64 {
	var out []uint64
	var k, v uint64
	it := c.objs.Dead.Iterate()
	for it.Next(&k, &v) {
		out = append(out, k)
	}
	for _, k := range out {
		_ = c.objs.Dead.Delete(k)
	}
	return out
}

// Forget deletes a cgroup's counts from the map (after its removal).
func (c *Counter) Forget(id uint64) error {
	if id == Overflow {
		return nil
	}
	if err := c.objs.Cgstats.Delete(id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("forget cgroup %d: %w", id, err)
	}
	return nil
}

// Stats returns the program's own counters, summed over CPUs.
func (c *Counter) Stats() (ProgStats, error) {
	var s ProgStats
	var last []cgroupsCpuLast
	if err := c.objs.Last.Lookup(uint32(0), &last); err != nil {
		return s, fmt.Errorf("cgroup counter stats: %w", err)
	}
	for _, l := range last {
		s.Switches += l.Switches
		s.Full += l.Full
		s.ReadErrors += l.ReadErr
	}
	var per []uint64
	if err := c.objs.Stats.Lookup(uint32(0), &per); err != nil {
		return s, fmt.Errorf("cgroup counter stats: %w", err)
	}
	for _, v := range per {
		s.Removals += v
	}
	return s, nil
}

// SwitchCost is the sched_switch program's own accumulated run time and
// run count, as the kernel measures them while BPF statistics are on
// (EnableRunStats); zero otherwise.
func (c *Counter) SwitchCost() (time.Duration, uint64, error) {
	st, err := c.objs.OnSwitch.Stats()
	if err != nil {
		return 0, 0, fmt.Errorf("program stats: %w", err)
	}
	return st.Runtime, st.RunCount, nil
}

// EnableRunStats turns the kernel's BPF run-time statistics on until the
// returned closer is closed (sysctl kernel.bpf_stats_enabled; it costs a
// clock read per program run).
func EnableRunStats() (io.Closer, error) {
	const bpfStatsRunTime = 0 // BPF_STATS_RUN_TIME
	return ebpf.EnableStats(bpfStatsRunTime)
}

// Close detaches the program and frees its maps.
func (c *Counter) Close() error {
	var errs []error
	for _, l := range c.links {
		errs = append(errs, l.Close())
	}
	c.links = nil
	errs = append(errs, c.objs.Close())
	return errors.Join(errs...)
}
