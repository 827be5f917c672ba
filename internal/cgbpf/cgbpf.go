// SPDX-License-Identifier: Apache-2.0

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

// programCharges reports whether the programs charge counter i
// themselves (page faults, switches, migrations, on-CPU time): an event
// charged there would count twice.
func programCharges(i uint32) bool {
	switch i {
	case counterPageFaults, counterSwitches, counterMigrations, counterRuntime:
		return true
	}
	return false
}

// The counters the programs charge themselves (PRESET_* and
// COUNTER_RUNTIME in cgroups.bpf.c): the pmu preset ids of page faults,
// context switches and CPU migrations, and the on-CPU ns at 15
// (abi.ProcCounterRuntime); cross-checked by TestCounterIndexes.
const (
	counterPageFaults = 12
	counterSwitches   = 13
	counterMigrations = 14
	counterRuntime    = 15
)

// Counters of the program itself.
type ProgStats struct {
	Switches, Full, ReadErrors, Removals uint64
	// Flushes: pending parts moved to their hash row (a switch out of a
	// cgroup other than the one charged last on that CPU).
	Flushes uint64
	// Dropped: switches of a removed cgroup's pending part that the
	// program dropped instead of re-creating the cgroup's row.
	Dropped uint64
	// Inconsistent: CPUs whose pending part Read left out (its copies
	// raced a flush every time).
	Inconsistent uint64
	// Migrations: CPU migrations the migrate program charged (to the
	// task's cgroup row, or to the overflow row: MigrationsFull of
	// them). MigrationsDropped: migrations of a task whose cgroup was
	// removed and has no row, not charged (guarantee 4).
	Migrations, MigrationsFull, MigrationsDropped uint64
}

// Indexes of the program's stats map (enum in cgroups.bpf.c).
const (
	statRmdir = iota
	statMigrate
	statMigrateFull
	statMigrateDropped
	statMax
)

// cpuLast is one CPU's state in the program (struct cpu_last).
type cpuLast = cgroupsCpuLast

// pendingSlots is the number of pending parts per CPU (pend_id).
const pendingSlots = len(cpuLast{}.PendId)

// pendingReads bounds the copies of the per-CPU state one Read takes to
// find each CPU's pending part between two copies with the same even
// sequence count.
const pendingReads = 6

// Counter is the loaded, attached program.
type Counter struct {
	objs  cgroupsObjects
	links []link.Link
	ncpus int
	keys  []uint64
	vals  []Stat
	// Read's scratch: every hash row of this read.
	rowIDs  []uint64
	rowVals []Stat
	// pub holds what Read last reported per row (guarantee 3).
	pub map[uint64][]Stat
	// dead: removed cgroups reported by Removed and not yet forgotten;
	// the value is when Read deleted the hash row (since opened; 0: not
	// yet).
	dead         map[uint64]time.Duration
	opened       time.Time
	reads        uint64
	inconsistent uint64
	// Read's copies of the per-CPU state.
	copies [3][]cpuLast
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
		if programCharges(e.Preset) {
			return nil, fmt.Errorf("event %d charges counter %d, which the program charges itself", k, e.Preset)
		}
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
	c := &Counter{ncpus: cfg.NCPUs, pub: map[uint64][]Stat{}, dead: map[uint64]time.Duration{}, opened: time.Now()}
	if err := spec.LoadAndAssign(&c.objs, nil); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	arrays := c.eventArrays()
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
	for _, p := range []*ebpf.Program{c.objs.OnSwitch, c.objs.OnMigrate, c.objs.OnRmdir} {
		l, err := link.AttachTracing(link.TracingOptions{Program: p})
		if err != nil {
			return nil, fmt.Errorf("attach %s: %w", p, err)
		}
		c.links = append(c.links, l)
	}
	ok = true
	return c, nil
}

// Read calls fn with every cgroup's per-CPU counts (valid only during
// the call): each hash row plus every CPU's pending part of that
// cgroup, the pending parts of cgroups that have no row
// yet, and the idle row (Idle) from the per-CPU idle parts. It never
// calls fn with a cgroup Removed has returned, and every value it gives
// is at least what it gave before for that row and CPU (doc.go,
// guarantees 1-5). It then forgets the removed cgroups no CPU holds
// pending any more.
func (c *Counter) Read(fn func(id uint64, perCPU []Stat)) error {
	c.reads++
	// 1. The hash rows, all of them, before any pending part.
	if err := c.readRows(); err != nil {
		return err
	}
	// 2. The per-CPU parts.
	state, ok, err := c.readPending()
	if err != nil {
		return err
	}
	n := c.ncpus
	inHash := make(map[uint64]bool, len(c.rowIDs))
	for i, id := range c.rowIDs {
		inHash[id] = true
		if _, gone := c.dead[id]; gone || id == Idle {
			continue
		}
		per := c.rowVals[i*n : (i+1)*n]
		for cpu := range per {
			if !ok[cpu] {
				continue
			}
			for k, pid := range state[cpu].PendId {
				if pid == id {
					addStat(&per[cpu], &state[cpu].Pend[k])
				}
			}
		}
		fn(id, c.monotonic(id, per))
	}
	// 3. Pending parts of cgroups without a row: the row is inserted
	// (zero) so the flush lands there, not in the overflow row, after
	// the counts were reported under the cgroup; a full map leaves them
	// out until they land where the flush puts them.
	var extra map[uint64][]Stat
	for slot := 0; slot < n*pendingSlots; slot++ {
		cpu, k := slot/pendingSlots, slot%pendingSlots
		id := state[cpu].PendId[k]
		if !ok[cpu] || id == Idle || id == Overflow || inHash[id] {
			continue
		}
		if _, gone := c.dead[id]; gone {
			continue
		}
		if extra == nil {
			extra = map[uint64][]Stat{}
		}
		per, seen := extra[id]
		if !seen {
			err := c.objs.Cgstats.Update(id, make([]Stat, n), ebpf.UpdateNoExist)
			if err != nil && !errors.Is(err, ebpf.ErrKeyExist) {
				extra[id] = nil // full: left out
				continue
			}
			per = make([]Stat, n)
			extra[id] = per
		}
		if per != nil {
			per[cpu] = state[cpu].Pend[k] // one slot per cgroup per CPU
		}
	}
	for id, per := range extra {
		if per != nil {
			fn(id, c.monotonic(id, per))
		}
	}
	// 4. The idle row.
	idle := make([]Stat, n)
	for cpu := range idle {
		idle[cpu] = state[cpu].Idle
	}
	fn(Idle, c.monotonic(Idle, idle))
	c.forgetDead(state, ok)
	return nil
}

// readRows copies every hash row into c.rowIDs/c.rowVals.
func (c *Counter) readRows() error {
	const batch = 256
	if c.keys == nil {
		c.keys = make([]uint64, batch)
		c.vals = make([]Stat, batch*c.ncpus)
	}
	c.rowIDs, c.rowVals = c.rowIDs[:0], c.rowVals[:0]
	var cur ebpf.MapBatchCursor
	for {
		n, err := c.objs.Cgstats.BatchLookup(&cur, c.keys, c.vals, nil)
		c.rowIDs = append(c.rowIDs, c.keys[:n]...)
		c.rowVals = append(c.rowVals, c.vals[:n*c.ncpus]...)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read cgroup counters: %w", err)
		}
	}
}

// readPending copies the per-CPU state until each CPU has a copy taken
// between two copies with the same even sequence count (no flush ran on
// that CPU from before that copy to after it: guarantee 2), at most
// pendingReads copies. ok[cpu] is false for a CPU that never had one:
// its pending parts are left out of this read (its idle part, never
// moved, is taken from the last copy).
func (c *Counter) readPending() ([]cpuLast, []bool, error) {
	n := c.ncpus
	good := make([]cpuLast, n)
	ok := make([]bool, n)
	left := n
	for k := 0; k < pendingReads; k++ {
		cp := &c.copies[k%3]
		if err := c.objs.Last.Lookup(uint32(0), cp); err != nil {
			return nil, nil, fmt.Errorf("read cgroup pending counts: %w", err)
		}
		if len(*cp) != n {
			return nil, nil, fmt.Errorf("read cgroup pending counts: %d CPUs, want %d", len(*cp), n)
		}
		if k < 2 {
			continue
		}
		before, mid, after := c.copies[(k-2)%3], c.copies[(k-1)%3], *cp
		for cpu := 0; cpu < n; cpu++ {
			if ok[cpu] {
				continue
			}
			if s := before[cpu].Seq; s&1 == 0 && after[cpu].Seq == s {
				good[cpu] = mid[cpu]
				ok[cpu] = true
				left--
			}
		}
		if left == 0 {
			break
		}
	}
	if left > 0 {
		last := c.copies[(pendingReads-1)%3]
		for cpu := 0; cpu < n; cpu++ {
			if !ok[cpu] {
				good[cpu].Idle = last[cpu].Idle
				c.inconsistent++
			}
		}
	}
	return good, ok, nil
}

// deadGrace is how long a removed cgroup's dead-map entry outlives its
// hash row. rmdir succeeds once the cgroup's last task has left its task
// list on the way out (cgroup_exit), but that task still switches out at
// least once more, charged to the removed cgroup; on PREEMPT_RT it may
// switch several times on its way out. While the entry exists such a
// switch cannot re-create the row (guarantee 4). Found in the 6.12-rt
// guest, where dropping the entry one Read later (milliseconds in a
// tight loop) let a dying task bring a removed cgroup's row back.
const deadGrace = 5 * time.Second

// forgetDead deletes the hash rows of the removed cgroups no CPU holds
// pending (every CPU read consistently), and deadGrace later their
// entries in the dead map, which until then stops a late flush from
// re-creating the row (guarantee 4).
func (c *Counter) forgetDead(state []cpuLast, ok []bool) {
	for _, good := range ok {
		if !good {
			return
		}
	}
	now := time.Since(c.opened) + 1 // never 0, "not yet forgotten"
	for id, at := range c.dead {
		if at != 0 {
			if now-at >= deadGrace {
				_ = c.objs.Dead.Delete(id)
				delete(c.dead, id)
			}
			continue
		}
		held := false
		for cpu := range state {
			for _, pid := range state[cpu].PendId {
				held = held || pid == id
			}
		}
		if held {
			continue
		}
		if err := c.Forget(id); err == nil {
			c.dead[id] = now
		}
	}
}

// monotonic raises every value of per to what was last reported for row
// id and CPU, and remembers the result (guarantee 3).
func (c *Counter) monotonic(id uint64, per []Stat) []Stat {
	prev, ok := c.pub[id]
	if !ok {
		prev = make([]Stat, len(per))
		copy(prev, per)
		c.pub[id] = prev
		return per
	}
	for cpu := range per {
		p, s := &prev[cpu], &per[cpu]
		for i := range s.Counter {
			s.Counter[i] = max(s.Counter[i], p.Counter[i])
		}
		for i := range s.Enabled {
			s.Enabled[i] = max(s.Enabled[i], p.Enabled[i])
			s.Running[i] = max(s.Running[i], p.Running[i])
		}
		*p = *s
	}
	return per
}

func addStat(dst, src *Stat) {
	for i := range dst.Counter {
		dst.Counter[i] += src.Counter[i]
	}
	for i := range dst.Enabled {
		dst.Enabled[i] += src.Enabled[i]
		dst.Running[i] += src.Running[i]
	}
}

// Removed returns the ids of the cgroups removed since the last call.
// Read no longer reports them; it forgets their rows once no CPU holds
// them pending.
func (c *Counter) Removed() []uint64 {
	var out []uint64
	var k, v uint64
	it := c.objs.Dead.Iterate()
	for it.Next(&k, &v) {
		if _, seen := c.dead[k]; !seen {
			c.dead[k] = 0
			out = append(out, k)
		}
	}
	return out
}

// Forget deletes a cgroup's counts from the map (Read does it for the
// cgroups Removed returned).
func (c *Counter) Forget(id uint64) error {
	if id == Overflow {
		return nil
	}
	delete(c.pub, id)
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
		s.Flushes += l.Flushes
		s.Dropped += l.Dropped
	}
	s.Inconsistent = c.inconsistent
	for i, dst := range []*uint64{statRmdir: &s.Removals, statMigrate: &s.Migrations, statMigrateFull: &s.MigrationsFull, statMigrateDropped: &s.MigrationsDropped} {
		var per []uint64
		if err := c.objs.Stats.Lookup(uint32(i), &per); err != nil {
			return s, fmt.Errorf("cgroup counter stats: %w", err)
		}
		for _, v := range per {
			*dst += v
		}
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

// MigrateCost is SwitchCost for the migrate program (sched_migrate_task).
func (c *Counter) MigrateCost() (time.Duration, uint64, error) {
	st, err := c.objs.OnMigrate.Stats()
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

func (c *Counter) eventArrays() []*ebpf.Map {
	return []*ebpf.Map{c.objs.Ev0, c.objs.Ev1, c.objs.Ev2, c.objs.Ev3, c.objs.Ev4, c.objs.Ev5, c.objs.Ev6, c.objs.Ev7}
}

// SetEvent makes Config.Events[k] on cpu the perf event fd from the
// next switch on (a CPU that came back online: its old events no longer
// count). The program charges nothing across the change: the first
// reading of the new event only sets the base of the next delta (a count
// that went back is not a delta).
func (c *Counter) SetEvent(k, cpu, fd int) error {
	arrays := c.eventArrays()
	if k < 0 || k >= len(arrays) || cpu < 0 || cpu >= c.ncpus || fd < 0 {
		return fmt.Errorf("set event %d of cpu %d: out of range", k, cpu)
	}
	if err := arrays[k].Put(uint32(cpu), uint32(fd)); err != nil {
		return fmt.Errorf("set event %d of cpu %d: %w", k, cpu, err)
	}
	return nil
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
