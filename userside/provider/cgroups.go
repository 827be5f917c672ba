package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"
	"unsafe"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/cgbpf"
	"github.com/kushm/kushm/internal/cgroup2"
	"github.com/kushm/kushm/internal/errs"
	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
)

// CgroupMode selects how the "cgroups" section is filled.
type CgroupMode int

const (
	// CgroupAuto (the default): the BPF program where it can run (root,
	// this machine's own /proc and /sys), otherwise off (the section
	// stays empty and the info section says why).
	CgroupAuto CgroupMode = iota
	// CgroupBPF: a tp_btf sched_switch program charges the outgoing
	// task's cgroup with the on-CPU time, one switch, its page faults and
	// the deltas of the per-CPU events, a sched_migrate_task program its
	// CPU migrations; every cgroup of the machine, no file descriptor
	// per cgroup. Failing to load it is an error.
	CgroupBPF
	// CgroupPerf: perf cgroup events (PERF_FLAG_PID_CGROUP), one per
	// preset per CPU per cgroup, for CgroupParent and its children only,
	// at most CgroupMaxFDs descriptors.
	CgroupPerf
	// CgroupOff: no per-cgroup counting.
	CgroupOff
)

func (m CgroupMode) String() string {
	switch m {
	case CgroupAuto:
		return "auto"
	case CgroupBPF:
		return "bpf"
	case CgroupPerf:
		return "perf"
	case CgroupOff:
		return "off"
	}
	return fmt.Sprintf("CgroupMode(%d)", int(m))
}

// ParseCgroupMode parses "auto", "bpf", "perf" or "off".
func ParseCgroupMode(s string) (CgroupMode, error) {
	for m := CgroupAuto; m <= CgroupOff; m++ {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("%w: cgroup mode %q (auto, bpf, perf or off)", ErrConfig, s)
}

// Cgroup defaults.
const (
	DefaultCgroupCapacity = 2048
	DefaultCgroupMaxFDs   = 1024
	// cgroupMaxHW bounds the hardware presets charged to cgroups (one
	// perf event read each per context switch); cgroupHWPresets are
	// they, in this order, when the machine has them.
	cgroupMaxHW = 4
)

var cgroupHWPresets = []pmu.PresetID{pmu.PAPI_TOT_CYC, pmu.PAPI_TOT_INS, pmu.PAPI_L3_TCM, pmu.PAPI_L3_TCA, pmu.PAPI_L2_TCM, pmu.PAPI_L1_DCM, pmu.PAPI_BR_MSP}

// ErrTooManyFDs: perf cgroup mode would need more file descriptors than
// allowed.
var ErrTooManyFDs = errs.Refine(errs.ErrInvalid, "too many perf file descriptors for per-cgroup counting")

// cgroupState is the provider's per-cgroup producer.
type cgroupState struct {
	mode  CgroupMode
	bpf   *cgbpf.Counter
	evIdx []int // per bpf event slot: the index of its preset in pmuIDs
	perf  []*perfCgroup
	// perfIDs are the presets of every perf cgroup reader.
	perfIDs []pmu.PresetID
	data    abi.CgroupData
	words   [unsafe.Sizeof(abi.CgroupStat{}) / 8]uint64
	last    time.Time
	full    uint64
	ticks   uint64
	fds     int
	reason  string // why the section is empty, "" when it is filled
}

// perfCgroup is one cgroup counted with perf cgroup events (mode perf).
type perfCgroup struct {
	id   uint64
	path string
	rs   []*pmu.Reader // per cpus[i]
	vals []pmu.Value
	grp  []int // group slot per preset index, -1 exact
	// Per cpus[i]: the words last published, and those of before the
	// CPU's readers were opened again (hotplug.go), added to the new
	// readers' counts so that the slot never goes back.
	last, base [][]uint64
}

func cgroupWords() int { return int(unsafe.Sizeof(abi.CgroupStat{}) / 8) }

// cgroupSpec is the "cgroups" section: key cgroup id, data CgroupData,
// one CgroupStat slot per CPU; its columns are declared in abi.Sections.
func cgroupSpec(ncpus, capacity int, cols []shm.ColumnSpec) (shm.SectionSpec, error) {
	return rcuhash.Spec(abi.SecNameCgroups, rcuhash.Geometry{
		Capacity: capacity, NSlots: ncpus,
		ValueSize: int(unsafe.Sizeof(abi.CgroupStat{})), DataSize: int(unsafe.Sizeof(abi.CgroupData{})),
	}, cols)
}

// openCgroups starts the per-cgroup producer the configuration asks for.
// In auto mode a failure leaves the section empty with the reason; in an
// explicit mode it is an error.
func (p *Provider) openCgroups() error {
	st := &cgroupState{mode: p.cfg.Cgroups}
	p.cg = st
	mode := st.mode
	if mode == CgroupAuto {
		switch {
		case p.cfg.Root != "/":
			st.reason = "per-cgroup counting is off with a fixture root (--root)"
			return nil
		case os.Geteuid() != 0:
			st.reason = "per-cgroup counting needs root (the BPF program needs CAP_BPF and CAP_PERFMON); fix: run kushm serve as root, or --cgroup-mode perf --cgroup-parent DIR"
			return nil
		}
		mode = CgroupBPF
	}
	var err error
	switch mode {
	case CgroupOff:
		st.reason = "per-cgroup counting is off (kushm serve --cgroup-mode off)"
		return nil
	case CgroupBPF:
		err = p.openCgroupBPF(st)
	case CgroupPerf:
		err = p.openCgroupPerf(st)
	default:
		return fmt.Errorf("%w: cgroup mode %d", ErrConfig, mode)
	}
	if err != nil {
		if st.mode == CgroupAuto {
			st.reason = "the per-cgroup BPF program could not be loaded: " + err.Error()
			p.cfg.Logf("cgroups: %s", st.reason)
			return nil
		}
		return err
	}
	st.mode = mode
	return nil
}

// openCgroupBPF loads the sched_switch program over the per-CPU events
// the provider already opened: one read at each switch serves the CPU
// rows and the cgroup rows.
func (p *Provider) openCgroupBPF(st *cgroupState) error {
	// Page faults come from the outgoing task's own counters, switches
	// and on-CPU time from the switch program itself, migrations from
	// the migrate program (sched_migrate_task, off the switch path):
	// only hardware presets cost a perf event read (~100 ns each here)
	// per switch.
	var want []pmu.PresetID
	for _, id := range cgroupHWPresets {
		if len(want) < cgroupMaxHW && p.sys.Mapping(id).Flags&pmu.FlagUncore == 0 {
			want = append(want, id)
		}
	}
	idx := map[pmu.PresetID]int{}
	for i, id := range p.pmuIDs {
		idx[id] = i
	}
	var evs []cgbpf.Event
	slot := map[int]int{} // reader group -> cgroup group slot
	groups := uint64(0)
	valid := uint64(1<<pmu.SW_CONTEXT_SWITCHES | 1<<pmu.SW_TASK_CLOCK | 1<<pmu.SW_PAGE_FAULTS | 1<<pmu.SW_CPU_MIGRATIONS | 1<<abi.ProcCounterRuntime)
	for _, id := range want {
		i, ok := idx[id]
		if !ok {
			continue
		}
		e := cgbpf.Event{Preset: uint32(id), Group: -1, FDs: map[int]int{}}
		rg := -2
		for ci, cpu := range p.cpus {
			r := p.pmuR[ci]
			if r == nil || r.Err(i) != nil {
				continue
			}
			fd, g := r.FD(i)
			if fd < 0 {
				continue
			}
			e.FDs[cpu] = fd
			if rg == -2 {
				rg = g
			}
		}
		if len(e.FDs) == 0 {
			continue
		}
		if rg == -1 {
			rg = 1000 + len(evs) // an event of its own is its own group
		}
		s, seen := slot[rg]
		if !seen {
			if len(slot) >= abi.CgroupGroups {
				continue // no slot left for its times: not charged rather than unmarked
			}
			s = len(slot)
			slot[rg] = s
			e.Group = s
		}
		groups |= uint64(s+1) << (4 * id)
		valid |= 1 << id
		evs = append(evs, e)
		st.evIdx = append(st.evIdx, i)
	}
	c, err := cgbpf.Open(cgbpf.Config{NCPUs: p.rows, Capacity: p.cfg.CgroupCapacity, Events: evs})
	if err != nil {
		return err
	}
	st.bpf = c
	st.data = abi.CgroupData{Valid: valid, Groups: groups}
	return nil
}

// openCgroupPerf opens perf cgroup events for the parent and its
// children, refusing when that needs more than CgroupMaxFDs descriptors.
func (p *Provider) openCgroupPerf(st *cgroupState) error {
	if p.cfg.CgroupParent == "" {
		return fmt.Errorf("%w: --cgroup-mode perf needs --cgroup-parent (a cgroup whose children are counted)", ErrConfig)
	}
	mnt, _, err := cgroup2.FindMount(p.cfg.Root)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	parent := filepath.Join(mnt, cgroupRelTo(p.cfg.CgroupParent, mnt, p.cfg.Root))
	ents, err := os.ReadDir(parent)
	if err != nil {
		return fmt.Errorf("%w: cgroup parent %s: %v", ErrConfig, p.cfg.CgroupParent, err)
	}
	dirs := []string{parent}
	for _, e := range ents {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join(parent, e.Name()))
		}
	}
	sort.Strings(dirs[1:])
	ids := []pmu.PresetID{pmu.SW_TASK_CLOCK, pmu.SW_PAGE_FAULTS, pmu.SW_CONTEXT_SWITCHES, pmu.SW_CPU_MIGRATIONS}
	for _, id := range cgroupHWPresets[:4] {
		if p.sys.Mapping(id).Flags&pmu.FlagUncore == 0 {
			ids = append(ids, id)
		}
	}
	st.perfIDs = ids
	ncpus := 0 // online now: a CPU that comes online later is opened then (reopenCgroupPerf)
	for ci := range p.cpus {
		if !p.life[ci].down {
			ncpus++
		}
	}
	need := len(dirs) * ncpus * len(ids)
	if need > p.cfg.CgroupMaxFDs {
		return fmt.Errorf("%w: %d cgroups x %d CPUs x %d events = %d descriptors, more than --cgroup-max-fds %d: choose a parent with fewer children, raise the limit, or use --cgroup-mode bpf (no descriptor per cgroup)",
			ErrTooManyFDs, len(dirs), ncpus, len(ids), need, p.cfg.CgroupMaxFDs)
	}
	var valid, groups uint64
	for _, d := range dirs {
		id, err := cgroup2.ID(d)
		if err != nil {
			continue
		}
		pc := &perfCgroup{id: id, path: d, rs: make([]*pmu.Reader, len(p.cpus)), vals: make([]pmu.Value, len(ids)),
			last: make([][]uint64, len(p.cpus)), base: make([][]uint64, len(p.cpus))}
		for ci, cpu := range p.cpus {
			if p.life[ci].down {
				continue
			}
			r, err := pmu.OpenCgroup(d, cpu, ids, &pmu.Options{System: p.sys, Group: true})
			if err != nil {
				pc.close()
				st.closePerf()
				return fmt.Errorf("perf cgroup events for %s on cpu %d: %w", d, cpu, err)
			}
			pc.rs[ci] = r
			st.fds += len(ids)
		}
		st.perf = append(st.perf, pc)
	}
	if len(st.perf) > 0 {
		// Group slots from the first reader: software group, then
		// hardware groups.
		var r *pmu.Reader
		for _, r = range st.perf[0].rs {
			if r != nil {
				break
			}
		}
		slots := r.GroupSlots(abi.CgroupGroups)
		for i, id := range ids {
			if s := slots[i]; s >= 0 {
				valid |= 1 << id
				groups |= uint64(s+1) << (4 * id)
			}
		}
		st.perf[0].grp = nil
		for _, pc := range st.perf {
			pc.grp = make([]int, len(ids))
			for i := range ids {
				pc.grp[i] = int(groups>>(4*ids[i])&15) - 1
			}
		}
	}
	if valid&(1<<pmu.SW_TASK_CLOCK) != 0 {
		valid |= 1 << abi.ProcCounterRuntime
	}
	st.data = abi.CgroupData{Valid: valid, Groups: groups}
	return nil
}

// cgroupRelTo turns a cgroup given as a path under the mount, under
// /sys/fs/cgroup (v2 unified) or relative to the hierarchy into the path
// relative to the hierarchy.
func cgroupRelTo(cg, mnt, root string) string {
	cg = filepath.Clean("/" + cg)
	rel, err := filepath.Rel(mnt, filepath.Join(root, cg))
	if err == nil && rel != ".." && !filepathHasDotDot(rel) {
		return "/" + rel
	}
	return cgroupRel(cg)
}

func filepathHasDotDot(rel string) bool {
	return rel == ".." || len(rel) >= 3 && rel[:3] == "../"
}

func (pc *perfCgroup) close() {
	for i, r := range pc.rs {
		if r != nil {
			r.Close()
			pc.rs[i] = nil
		}
	}
}

func (st *cgroupState) closePerf() {
	for _, pc := range st.perf {
		pc.close()
	}
	st.perf = nil
	st.fds = 0
}

func (st *cgroupState) close() {
	if st == nil {
		return
	}
	if st.bpf != nil {
		st.bpf.Close()
		st.bpf = nil
	}
	st.closePerf()
}

// sampleCgroups copies the per-cgroup counts into the section: one
// insert per new cgroup, one slot write per CPU per cgroup, a delete per
// removed cgroup.
func (p *Provider) sampleCgroups() {
	st := p.cg
	if st == nil || p.cgroups == nil {
		return
	}
	st.ticks++
	if st.bpf != nil {
		removed := st.bpf.Removed()
		_ = st.bpf.Read(func(id uint64, per []cgbpf.Stat) {
			if !p.ensureCgroup(id) {
				return
			}
			for cpu := range per {
				s := &per[cpu]
				w := st.words[:0]
				w = append(w, s.Counter[:]...)
				w = append(w, s.Enabled[:]...)
				w = append(w, s.Running[:]...)
				w[pmu.SW_TASK_CLOCK] = s.Counter[abi.ProcCounterRuntime]
				_ = p.cgroups.UpdateWords(id, cpu, w)
			}
		})
		// Read no longer reports a removed cgroup, and frees its map
		// row once no CPU holds counts of it pending (cgbpf, guarantee 4).
		for _, id := range removed {
			if p.cgroups.Has(id) {
				_ = p.cgroups.Delete(id)
			}
		}
		return
	}
	for _, pc := range st.perf {
		if !p.ensureCgroup(pc.id) {
			continue
		}
		for ci, cpu := range p.cpus {
			r := pc.rs[ci]
			if r == nil || p.life[ci].down || r.Read(pc.vals) != nil {
				continue // a CPU down: its readers no longer count (hotplug.go)
			}
			clear(st.words[:])
			for i, v := range pc.vals {
				if !v.OK {
					continue
				}
				st.words[v.Preset] = v.Raw
				if g := pc.grp[i]; g >= 0 {
					st.words[abi.CgroupCounters+g] = v.Enabled
					st.words[abi.CgroupCounters+abi.CgroupGroups+g] = v.Running
				}
			}
			st.words[abi.ProcCounterRuntime] = st.words[pmu.SW_TASK_CLOCK]
			if b := pc.base[ci]; b != nil {
				for i := range st.words {
					st.words[i] += b[i]
				}
			}
			_ = p.cgroups.UpdateWords(pc.id, cpu, st.words[:])
			if pc.last[ci] == nil {
				pc.last[ci] = make([]uint64, len(st.words))
			}
			copy(pc.last[ci], st.words[:])
		}
	}
}

// reopenCgroupPerf opens the perf cgroup events of CPU ci again, or for
// the first time (a CPU offline when they were opened): it came online
// (hotplug.go). Each cgroup's slot of the CPU goes on from the words last
// published. The descriptor cap still holds: past it a cgroup's CPU stays
// without events (logged).
func (p *Provider) reopenCgroupPerf(ci, cpu int) {
	st := p.cg
	capped := 0
	for _, pc := range st.perf {
		if old := pc.rs[ci]; old != nil {
			old.Close()
			pc.rs[ci] = nil
			st.fds -= len(st.perfIDs)
		}
		if st.fds+len(st.perfIDs) > p.cfg.CgroupMaxFDs {
			capped++
			continue
		}
		r, err := pmu.OpenCgroup(pc.path, cpu, st.perfIDs, &pmu.Options{System: p.sys, Group: true})
		if err != nil {
			continue
		}
		pc.rs[ci] = r
		st.fds += len(st.perfIDs)
		if pc.last[ci] != nil {
			pc.base[ci] = slices.Clone(pc.last[ci])
		}
	}
	if capped > 0 {
		p.cfg.Logf("cpu %d: %d cgroups not counted there: --cgroup-max-fds %d reached", cpu, capped, p.cfg.CgroupMaxFDs)
	}
}

// ensureCgroup inserts the node of cgroup id if it is new; false when
// the table is full (counted in the table's insert_full).
func (p *Provider) ensureCgroup(id uint64) bool {
	if p.cgroups.Has(id) {
		return true
	}
	d := p.cg.data
	data := (*[unsafe.Sizeof(abi.CgroupData{})]byte)(unsafe.Pointer(&d))[:]
	if err := p.cgroups.Insert(id, data, nil); err != nil {
		p.cg.full++
		return false
	}
	return true
}

// CgroupStats are the per-cgroup producer's own counters.
type CgroupStats struct {
	Mode     string `json:"mode"`
	Reason   string `json:"reason,omitempty"` // why nothing is counted
	Cgroups  int    `json:"cgroups"`          // rows in the section
	Full     uint64 `json:"full"`             // rows not added: the section was full
	PerfFDs  int    `json:"perf_fds"`         // descriptors of mode perf
	Switches uint64 `json:"switches"`         // switches the BPF program charged
	Overflow uint64 `json:"overflow"`         // switches charged to the overflow row
}

// CgroupStats returns the per-cgroup producer's counters.
func (p *Provider) CgroupStats() CgroupStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.cg
	if st == nil {
		return CgroupStats{Mode: "off"}
	}
	s := CgroupStats{Mode: st.mode.String(), Reason: st.reason, Full: st.full, PerfFDs: st.fds}
	if p.cgroups != nil {
		s.Cgroups = p.cgroups.Len()
	}
	if st.bpf != nil {
		if ps, err := st.bpf.Stats(); err == nil {
			s.Switches, s.Overflow = ps.Switches, ps.Full
		}
	}
	return s
}
