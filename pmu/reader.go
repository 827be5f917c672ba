//go:build linux

package pmu

import (
	"errors"
	"fmt"

	"github.com/kushm/kushm/internal/sys/perfsys"
)

// Options configure a Reader.
type Options struct {
	// Root of the /proc and /sys trees; "" means "/". Ignored when System
	// is set.
	Root string
	// System is the machine description to use; nil loads it from Root.
	// Share one System between the readers of all CPUs.
	System *System
	// Group opens the software presets as one perf event group and the
	// core hardware presets as another: each group is scheduled as a
	// whole (its members share one ratio, so derived metrics compare like
	// with like) and read with one read(2). Uncore presets are always
	// separate events. A hardware group larger than the PMU's counters
	// would never be scheduled, so hardware presets are split into groups
	// of at most MaxHWGroup events, which the kernel multiplexes as units.
	// Without Group every preset is an independent event, read with one
	// read(2) each and multiplexed on its own.
	Group bool
	// MaxHWGroup caps the size of a hardware group; 0 means 4, which fits
	// the general-purpose counters of Intel (4 per SMT thread) and AMD Zen
	// (6) alike.
	MaxHWGroup int
	// ExcludeKernel counts user space only.
	ExcludeKernel bool
	// Inherit (per-process readers only) also counts children the target
	// creates after the reader was opened.
	Inherit bool
}

// Value is one preset's reading. Values are cumulative since the reader
// was opened (or last Reset).
type Value struct {
	Preset PresetID `json:"preset"`
	// OK is false when the preset is unavailable in this reader (see
	// Reader.Err) or its event was enabled but never scheduled on a
	// counter (Enabled > 0, Running == 0: a hardware group too large for
	// the PMU, or a pinned event that lost its counter).
	OK bool `json:"ok"`
	// Raw is the count while the event was on a counter.
	Raw uint64 `json:"raw"`
	// Enabled and Running are time_enabled and time_running in ns.
	Enabled uint64 `json:"time_enabled_ns"`
	Running uint64 `json:"time_running_ns"`
	// Scaled is Raw × Enabled / Running: the estimate for the whole
	// enabled time when the kernel multiplexed the counter.
	Scaled uint64 `json:"scaled"`
	// Ratio is Running / Enabled: 1 means never multiplexed, 0.25 means
	// the event was counted a quarter of the time and Scaled is an
	// extrapolation from that quarter.
	Ratio float64 `json:"ratio"`
}

// Reader counts a fixed set of presets on one target. It keeps one file
// descriptor per event open between reads, so Read costs one read(2) per
// event (or one per group with Options.Group) and no allocation.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	ids    []PresetID
	errs   []error
	events []event // index into ids for open events
	groups []group
	buf    []byte
	counts []perfsys.Count
	cgfd   int
}

type event struct {
	idx int // index into ids
	fd  int
}

type group struct {
	leader  int   // fd read
	members []int // indexes into ids, in group order
	fds     []int // all fds, leader first
	single  bool  // standalone event: read without PERF_FORMAT_GROUP
}

// OpenCPU counts ids on one CPU, for everything that runs there (pid -1).
// It needs CAP_PERFMON or perf_event_paranoid <= 0.
func OpenCPU(cpu int, ids []PresetID, o *Options) (*Reader, error) {
	if err := checkCPU(cpu, o); err != nil {
		return nil, err
	}
	return open(perfsys.Target{PID: -1, CPU: cpu, CgroupFD: -1}, targetCPU, ids, o)
}

// OpenProcess counts ids for one process (pid 0: the calling thread) on
// whatever CPU it runs. Note that pid is a thread id: other threads of the
// process are counted only when created after opening with Options.Inherit.
func OpenProcess(pid int, ids []PresetID, o *Options) (*Reader, error) {
	return open(perfsys.Target{PID: pid, CPU: -1, CgroupFD: -1}, targetTask, ids, o)
}

// OpenCgroup counts ids for the tasks of one cgroup (a directory in the
// cgroup v2 or perf_event v1 hierarchy) while they run on cpu. The kernel
// has no all-CPU cgroup events: open one Reader per CPU and add them up.
func OpenCgroup(cgroupPath string, cpu int, ids []PresetID, o *Options) (*Reader, error) {
	if err := checkCPU(cpu, o); err != nil {
		return nil, err
	}
	fd, err := perfsys.OpenCgroup(cgroupPath)
	if err != nil {
		return nil, fmt.Errorf("open cgroup counters: %w", err)
	}
	r, err := open(perfsys.Target{PID: -1, CPU: cpu, CgroupFD: fd}, targetCgroup, ids, o)
	if err != nil {
		perfsys.Close(fd)
		return nil, err
	}
	r.cgfd = fd
	return r, nil
}

// ErrNoCPU is returned for a CPU that is not online.
var ErrNoCPU = errors.New("no such CPU")

func checkCPU(cpu int, o *Options) error {
	root := ""
	if o != nil {
		root = o.Root
		if o.System != nil {
			root = o.System.Root
		}
	}
	online, err := OnlineCPUs(root)
	if err != nil {
		if cpu < 0 {
			return fmt.Errorf("open counters on cpu %d: %w", cpu, ErrNoCPU)
		}
		return nil // cannot tell; the kernel will
	}
	for _, c := range online {
		if c == cpu {
			return nil
		}
	}
	return fmt.Errorf("open counters on cpu %d: %w (online: %v)", cpu, ErrNoCPU, online)
}

func open(t perfsys.Target, tk targetKind, ids []PresetID, o *Options) (*Reader, error) {
	if o == nil {
		o = &Options{}
	}
	sys := o.System
	if sys == nil {
		sys = LoadSystem(o.Root)
	}
	r := &Reader{ids: append([]PresetID(nil), ids...), errs: make([]error, len(ids)), cgfd: -1}
	// With Options.Group: one group for software presets, one for core
	// hardware presets (index into r.groups, -1 until the leader opened).
	grpIdx := map[bool]int{false: -1, true: -1}
	maxHW := o.MaxHWGroup
	if maxHW <= 0 {
		maxHW = 4
	}
	nopen := 0
	for i, id := range ids {
		if id >= NumPresets {
			r.Close()
			return nil, fmt.Errorf("open counters: preset %d: %w", uint32(id), ErrNotSupported)
		}
		m := sys.Mapping(id)
		attr, uerr := resolve(sys, m, tk, o.ExcludeKernel)
		if uerr != nil && (uerr.Kind == ErrNotSupported || m.Flags&FlagUncore != 0) {
			r.errs[i] = uerr
			continue
		}
		attr.Inherit = o.Inherit && tk == targetTask
		grouped := o.Group && m.Flags&FlagUncore == 0
		sw := m.Event.Type == TypeSoftware
		if grouped && !sw && grpIdx[sw] >= 0 && len(r.groups[grpIdx[sw]].members) >= maxHW {
			grpIdx[sw] = -1 // full: start another hardware group
		}
		leader := -1
		if grouped && grpIdx[sw] >= 0 {
			leader = r.groups[grpIdx[sw]].leader
		}
		fd, err := perfsys.Open(attr, t, leader, grouped)
		if err != nil && grouped && attr.Inherit && errors.Is(err, perfsys.EINVAL) {
			// Older kernels refuse PERF_FORMAT_GROUP with inherit:
			// count this preset as an independent event instead.
			grouped = false
			fd, err = perfsys.Open(attr, t, -1, false)
		}
		if err != nil {
			if fatal := fatalOpen(err, tk); fatal != nil {
				r.Close()
				return nil, fmt.Errorf("open %s counters: %w", tk, fatal)
			}
			r.errs[i] = classify(sys, m, tk, err)
			continue
		}
		switch {
		case !grouped:
			r.groups = append(r.groups, group{leader: fd, members: []int{i}, fds: []int{fd}, single: true})
		case grpIdx[sw] < 0:
			r.groups = append(r.groups, group{leader: fd, members: []int{i}, fds: []int{fd}})
			grpIdx[sw] = len(r.groups) - 1
		default:
			g := &r.groups[grpIdx[sw]]
			g.members = append(g.members, i)
			g.fds = append(g.fds, fd)
		}
		nopen++
	}
	if nopen == 0 && len(ids) > 0 {
		err := errors.Join(r.errs...)
		r.Close()
		return nil, fmt.Errorf("open %s counters: no preset could be opened: %w", tk, err)
	}
	max := 1
	for _, g := range r.groups {
		max = maxInt(max, len(g.members))
	}
	r.buf = make([]byte, perfsys.GroupBufSize(max))
	r.counts = make([]perfsys.Count, max)
	for _, g := range r.groups {
		if err := perfsys.Enable(g.leader, !g.single); err != nil {
			r.Close()
			return nil, fmt.Errorf("enable counters: %w", err)
		}
	}
	return r, nil
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// fatalOpen returns the error when it concerns the target rather than the
// event: no such process, bad cgroup.
func fatalOpen(err error, tk targetKind) error {
	var oe *perfsys.OpenError
	if !errors.As(err, &oe) {
		return nil
	}
	switch {
	case oe.Errno == perfsys.ESRCH:
		return fmt.Errorf("no such process: %w", err)
	case oe.Errno == perfsys.EBADF:
		return fmt.Errorf("bad cgroup: %w", err)
	case oe.Errno == perfsys.ENODEV && tk != targetTask:
		return fmt.Errorf("the CPU is offline or does not exist: %w", err)
	}
	return nil
}

// Presets returns the presets the reader was asked for, in Read order.
func (r *Reader) Presets() []PresetID { return r.ids }

// Err returns why preset i (an index into Presets) cannot be counted by
// this reader, or nil. Errors match ErrNotAvailable.
func (r *Reader) Err(i int) error { return r.errs[i] }

// FD returns the perf event file descriptor of preset i (an index into
// Presets) and the index of its event group among the reader's groups
// (-1 for an event read on its own), or fd -1 when the preset is not
// counted. The descriptor stays owned by the Reader (valid until Close):
// a BPF program reads it through a perf event array
// (bpf_perf_event_read_value), e.g. to charge per-CPU counts to cgroups.
func (r *Reader) FD(i int) (fd, group int) {
	for gi, g := range r.groups {
		for k, m := range g.members {
			if m == i {
				if g.single {
					return g.fds[k], -1
				}
				return g.fds[k], gi
			}
		}
	}
	return -1, -1
}

// GroupSlots numbers the event groups of the presets this reader counts,
// in order of first appearance (an event read on its own is a group of
// its own), at most max groups: slots[i] is preset i's group number, or
// -1 when preset i is not counted or its group came after the first max.
// Multiplexing times are kept per group slot (pmu_mux, procs_mux, cgroups).
func (r *Reader) GroupSlots(max int) []int {
	slots := make([]int, len(r.ids))
	seen := map[int]int{}
	for i := range slots {
		slots[i] = -1
		fd, g := r.FD(i)
		if r.errs[i] != nil || fd < 0 {
			continue
		}
		if g < 0 {
			g = len(r.groups) + i // a group of its own: a key no group index has
		}
		s, ok := seen[g]
		if !ok {
			if len(seen) >= max {
				continue
			}
			s = len(seen)
			seen[g] = s
		}
		slots[i] = s
	}
	return slots
}

// Available reports how many presets are being counted.
func (r *Reader) Available() int {
	n := 0
	for _, e := range r.errs {
		if e == nil {
			n++
		}
	}
	return n
}

// Read fills vals[i] for Presets()[i]; vals must have len(Presets())
// entries. Unavailable presets get OK == false. It does not allocate.
func (r *Reader) Read(vals []Value) error {
	if len(vals) < len(r.ids) {
		return fmt.Errorf("read counters: %d values for %d presets", len(vals), len(r.ids))
	}
	for i, id := range r.ids {
		vals[i] = Value{Preset: id}
	}
	for gi := range r.groups {
		g := &r.groups[gi]
		cs := r.counts[:len(g.members)]
		var err error
		if g.single {
			err = perfsys.ReadOne(g.leader, r.buf, &cs[0])
		} else {
			err = perfsys.ReadGroup(g.leader, r.buf[:perfsys.GroupBufSize(len(cs))], cs)
		}
		if err != nil {
			return fmt.Errorf("read counters: %w", err)
		}
		for k, i := range g.members {
			vals[i] = NewValue(r.ids[i], cs[k].Value, cs[k].Enabled, cs[k].Running)
		}
	}
	return nil
}

// NewValue is the Value of preset id from a raw count and its times
// enabled and running, however they were read (Reader.Read, or a BPF
// program's bpf_perf_event_read_value): scaled for multiplexing, OK when
// the event ran (or was never enabled: a count with no times).
func NewValue(id PresetID, raw, enabled, running uint64) Value {
	v := Value{Preset: id, Raw: raw, Enabled: enabled, Running: running}
	v.Scaled, v.Ratio = Scale(raw, enabled, running)
	v.OK = running > 0 || enabled == 0
	return v
}

// Reset zeroes all counters.
func (r *Reader) Reset() error {
	for _, g := range r.groups {
		if err := perfsys.Reset(g.leader, !g.single); err != nil {
			return fmt.Errorf("reset counters: %w", err)
		}
	}
	return nil
}

// Close releases all file descriptors. The Reader cannot be used after.
func (r *Reader) Close() error {
	var errs []error
	for _, g := range r.groups {
		for k := len(g.fds) - 1; k >= 0; k-- {
			if err := perfsys.Close(g.fds[k]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	r.groups = nil
	if r.cgfd >= 0 {
		perfsys.Close(r.cgfd)
		r.cgfd = -1
	}
	return errors.Join(errs...)
}

// PinToCPU binds the calling goroutine's thread to cpu until the returned
// function is called. Reading a per-CPU Reader from its own CPU avoids a
// cross-CPU call (IPI) per read(2): the provider should read CPU n's
// Reader from a goroutine pinned to CPU n.
func PinToCPU(cpu int) (unpin func(), err error) { return perfsys.PinThread(cpu) }
