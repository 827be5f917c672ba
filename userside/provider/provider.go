package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/cgroup2"
	"github.com/kushm/kushm/internal/errs"
	"github.com/kushm/kushm/internal/sys"
	"github.com/kushm/kushm/msr"
	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
)

// Name is the producer name written in the region header.
const Name = "kushm-serve"

// Defaults and bounds.
const (
	DefaultInterval     = time.Second
	MinInterval         = time.Duration(abi.MinIntervalUs) * time.Microsecond
	MaxInterval         = time.Duration(abi.MaxIntervalUs) * time.Microsecond
	DefaultProcCapacity = 4096
	// MaxProcCapacity is the largest procs table readers read
	// (client.MaxProcesses, the module's procs_capacity limit).
	MaxProcCapacity = 1 << 16
	// HeartbeatPeriod is the gap the provider promises between
	// heartbeats, whatever the sampling interval: readers call it stale
	// after 3 s without one.
	HeartbeatPeriod = time.Second
	heartbeatEvery  = time.Duration(abi.HeartbeatEveryUs) * time.Microsecond
	// maxProcPerf bounds the processes given their own hardware counters
	// (file descriptors: one per preset per process).
	maxProcPerf = 256
	// userHZ is the unit of utime/stime in /proc/<pid>/stat (USER_HZ,
	// 100 on every Linux architecture kushm supports).
	userHZ = 100
)

// Sentinel errors (wrapped with context; test with errors.Is).
var (
	// ErrBusy: a live producer already serves the region path.
	ErrBusy = errs.Refine(errs.ErrBusy, "region in use by a running producer")
	// ErrConfig: an invalid configuration value.
	ErrConfig = errs.Refine(errs.ErrInvalid, "invalid configuration")
)

// Watch selects the processes whose stats go into the "procs" table.
// The first non-empty field wins: None, PIDs, Cgroup, else every process
// of UID (the zero Watch: the caller's effective uid).
type Watch struct {
	None   bool
	PIDs   []int
	Cgroup string // cgroup v2 path, absolute ("/sys/fs/cgroup/x") or relative to the hierarchy ("/x")
	UID    *int
}

func (w Watch) String() string {
	switch {
	case w.None:
		return "no processes"
	case len(w.PIDs) > 0:
		return fmt.Sprintf("pids %v", w.PIDs)
	case w.Cgroup != "":
		return "cgroup " + w.Cgroup
	case w.UID != nil:
		return fmt.Sprintf("processes of uid %d", *w.UID)
	}
	return fmt.Sprintf("processes of uid %d", os.Geteuid())
}

// Config configures a Provider. The zero value is usable: the default
// path, interval 1 s, all presets and MSRs, the caller's processes.
type Config struct {
	// Path of the region file; "" means Root + shm.DaemonPath.
	Path string
	// Root of the /proc, /sys and /dev trees ("" or "/": this machine).
	Root string
	// Interval between per-CPU samples (default 1 s, 10 ms … 60 s). The
	// control section's interval_us overrides it while valid.
	Interval time.Duration
	// ProcInterval between samples of the watched processes (default:
	// the larger of Interval and 1 s). Process discovery (a readdir of
	// /proc) runs at the same pace.
	ProcInterval time.Duration
	// Watch selects the processes of the "procs" table.
	Watch Watch
	// Presets to count per CPU (nil: all of pmu.Presets()).
	Presets []pmu.PresetID
	// NoMSR skips the MSR catalogue (the section stays, every slot n/a).
	NoMSR bool
	// ProcCapacity is the capacity of the procs table (default 4096).
	ProcCapacity int
	// Files: modes and group of the region and control files.
	Files shm.CreateOptions
	// Logf receives operational messages (nil: discarded).
	Logf func(format string, args ...any)

	// Cgroups selects per-cgroup counting (the "cgroups" section):
	// CgroupAuto by default (the BPF program as root, else off).
	Cgroups CgroupMode
	// CgroupParent is the cgroup whose children CgroupPerf counts
	// (a path under the cgroup2 mount, or relative to the hierarchy).
	CgroupParent string
	// CgroupCapacity is the capacity of the cgroups table (default 2048).
	CgroupCapacity int
	// CgroupMaxFDs caps the perf descriptors of CgroupPerf (default 1024).
	CgroupMaxFDs int
	// CgroupInterval between copies of the per-cgroup counts into the
	// region (default: ProcInterval).
	CgroupInterval time.Duration
	// Sampler selects who reads the per-CPU counters: SamplerAuto by
	// default (a BPF timer on each CPU as root where the kernel allows
	// it, else the daemon).
	Sampler SamplerMode
}

// Unavailable is one counter the provider cannot read, and why, as data:
// kushm's one Unavailable type (internal/errs), written to the info
// section entry by entry (abi.AppendInfoEntry).
type Unavailable = errs.Unavailable

// Stats are the provider's own counters.
type Stats struct {
	Ticks       uint64        // per-CPU samples taken
	ProcTicks   uint64        // process samples taken
	Watched     int           // processes in the procs table
	ProcsFull   uint64        // processes not added because the table was full
	LastTick    time.Duration // duration of the last per-CPU sample
	Interval    time.Duration // the interval in force
	CtlRejected uint64        // control values refused
	CtlRenewed  uint64        // control files renewed after a user truncated, grew or replaced them
	// SamplerMisses counts CPU rows the daemon read itself although the
	// BPF sampler runs (no complete sample, or a stale one).
	SamplerMisses uint64
	// SamplerRestarts counts the sampler's timers restarted on CPUs
	// that came back online (their timers stopped when they went away).
	SamplerRestarts uint64
	// CPURevivals counts the times a CPU's counters were opened when it
	// came online: back from offline (the old events no longer count),
	// or for the first time (offline when the daemon started).
	CPURevivals uint64
}

type watched struct {
	start uint64
	data  abi.ProcData // the row's node data as written
	hw    *pmu.Reader
	hwIDs []pmu.PresetID
	vals  []pmu.Value
	valid uint64
	// grp[i]: the procs_mux group of hwIDs[i] (-1: none).
	grp []int
}

// Provider samples this machine's counters into a region. Create it with
// New, run it with Run (or call Sample from a loop of your own), and
// Close it. Its methods are safe for concurrent use, but only one
// goroutine may call Run or Sample at a time.
type Provider struct {
	cfg    Config
	path   string
	region *shm.Region
	pmuArr *atomicarr.Array
	msrArr *atomicarr.Array
	// cputime section: /proc/stat path, read buffer, row slots.
	cpuTimeArr *atomicarr.Array
	procStat   string
	cpuStatBuf []byte
	// procStatFD: /proc/stat, kept open once read (procStatOpen).
	procStatFD   int
	procStatOpen bool
	tslots       [NumCPUTime]uint64
	// lastCPUTime: monotonic ns of the last /proc/stat read;
	// lastCtlCheck: of the last control file identity check.
	lastCPUTime  uint64
	lastCtlCheck uint64
	procs        *rcuhash.Table
	cgroups      *rcuhash.Table
	muxArr       *atomicarr.Array
	procsMux     *rcuhash.Table
	// muxGroup[ci][i]: the pmu_mux group of preset index i on cpus[ci]
	// (-1: none); muxMap[ci] the row's group map; muxSlots the row.
	muxGroup [][]int
	muxMap   []uint64
	muxSlots [abi.NumPMUMux]uint64
	cg       *cgroupState
	smp      *samplerState
	life     []cpuLife // per cpus[i]: CPU hotplug (hotplug.go)
	online   []int     // the online CPUs as last read (onlineNow)
	onlineAt uint64
	ctl      []byte // the control section (read-write), nil if absent

	sys     *pmu.System
	rows    int
	cpus    []int
	pmuIDs  []pmu.PresetID
	pmuR    []*pmu.Reader // per cpus[i]; nil when it could not be opened
	vals    []pmu.Value
	slots   []uint64
	msrR    *msr.Reader
	msrIDs  [][]msr.ID // per cpus[i]: the entries that read there
	mslots  []uint64
	procHW  []pmu.PresetID
	unavail []Unavailable

	mu        sync.Mutex // serializes Sample and Close
	closed    bool
	watched   map[int]*watched
	lastProc  time.Time
	lastCg    time.Time
	statBuf   []byte
	procWords [abi.ProcCounters]uint64
	ctlSeen   [7]uint32
	ctlLogged time.Time // last log line about control (rate limit)
	ctlQuiet  int       // control log lines held back since
	adopted   bool
	stats     Stats
	interval  atomic.Int64
}

// New probes the counters, opens them, and creates the region (replacing
// a stale one; refusing with ErrBusy while a live producer serves it, and
// with shm.ErrExists when the path holds something else).
func New(cfg Config) (*Provider, error) {
	p, err := newProvider(cfg)
	if err != nil {
		return nil, fmt.Errorf("start provider: %w", err)
	}
	return p, nil
}

func newProvider(cfg Config) (*Provider, error) {
	if cfg.Root == "" {
		cfg.Root = "/"
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Interval < MinInterval || cfg.Interval > MaxInterval {
		return nil, fmt.Errorf("%w: interval %v is outside %v … %v", ErrConfig, cfg.Interval, MinInterval, MaxInterval)
	}
	if cfg.ProcInterval == 0 {
		cfg.ProcInterval = max(cfg.Interval, time.Second)
	}
	if cfg.ProcInterval < cfg.Interval {
		cfg.ProcInterval = cfg.Interval
	}
	if cfg.ProcCapacity == 0 {
		cfg.ProcCapacity = DefaultProcCapacity
	}
	if cfg.ProcCapacity < 1 || cfg.ProcCapacity > MaxProcCapacity {
		return nil, fmt.Errorf("%w: process capacity %d (1..%d: readers ignore bigger tables)", ErrConfig, cfg.ProcCapacity, MaxProcCapacity)
	}
	if cfg.Presets == nil {
		for i := 0; i < pmu.NumPresets; i++ {
			cfg.Presets = append(cfg.Presets, pmu.PresetID(i))
		}
	}
	for _, id := range cfg.Presets {
		if id >= pmu.NumPresets {
			return nil, fmt.Errorf("%w: preset id %d", ErrConfig, id)
		}
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.CgroupCapacity == 0 {
		cfg.CgroupCapacity = DefaultCgroupCapacity
	}
	if cfg.CgroupCapacity < 2 || cfg.CgroupCapacity > 1<<20 {
		return nil, fmt.Errorf("%w: cgroup capacity %d (2 … 1048576)", ErrConfig, cfg.CgroupCapacity)
	}
	if cfg.CgroupMaxFDs == 0 {
		cfg.CgroupMaxFDs = DefaultCgroupMaxFDs
	}
	if cfg.CgroupInterval == 0 {
		cfg.CgroupInterval = cfg.ProcInterval
	}
	if cfg.CgroupInterval < cfg.Interval {
		cfg.CgroupInterval = cfg.Interval
	}
	if cg := cfg.Watch.Cgroup; cg != "" && !cfg.Watch.None && len(cfg.Watch.PIDs) == 0 {
		mnt, _, err := cgroup2.FindMount(cfg.Root)
		if err != nil {
			return nil, fmt.Errorf("%w: cgroup %s: %v", ErrConfig, cg, err)
		}
		dir := filepath.Join(mnt, cgroupRelTo(cg, mnt, cfg.Root))
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("%w: cgroup %s: %s is not a cgroup v2 directory", ErrConfig, cg, dir)
		}
		cfg.Watch.Cgroup = cgroupRelTo(cg, mnt, cfg.Root)
	}
	path := cfg.Path
	if path == "" {
		path = filepath.Join(cfg.Root, shm.DaemonPath)
	}
	if err := checkBusy(path, cfg.Logf); err != nil {
		return nil, err
	}
	p := &Provider{cfg: cfg, path: path, watched: map[int]*watched{}, statBuf: make([]byte, 1024)}
	p.interval.Store(int64(cfg.Interval))
	ok := false
	defer func() {
		if !ok {
			p.closeReaders()
		}
	}()
	if err := p.openCounters(); err != nil {
		return nil, err
	}
	if err := p.openSampler(); err != nil {
		return nil, err
	}
	p.cfg.Logf("per-CPU counters: %s", p.Sampler())
	if err := p.openCgroups(); err != nil {
		return nil, err
	}
	if p.cg.reason != "" {
		p.unavail = append(p.unavail, Unavailable{What: abi.SecNameCgroups, Cause: p.cg.reason})
	}
	if err := p.createRegion(); err != nil {
		return nil, err
	}
	// A first complete sample at once (CPUs, the watched processes, the
	// cgroups), so that a reader opening the fresh region, or a service
	// ServeOptions.Attach starts before Run (the Prometheus endpoint),
	// finds values rather than "no sample yet" or sections not copied
	// yet.
	p.sampleAll(time.Now(), true)
	ok = true
	return p, nil
}

// checkBusy refuses a path whose region has a live producer (another
// daemon), and logs when it replaces a stale one.
func checkBusy(path string, logf func(string, ...any)) error {
	r, err := shm.Open(path, shm.Options{AllowStale: true})
	if err != nil {
		return nil // nothing there, or not a region: Create decides
	}
	defer r.Close()
	h := r.Header()
	live := r.Liveness()
	if !live.Stale && h.ProducerPID != 0 && pidAlive(int(h.ProducerPID)) {
		return fmt.Errorf("%w: %s is served by %s pid %d (heartbeat %v ago): stop it first, or choose another --region",
			ErrBusy, path, shm.ProducerKindName(h.ProducerKind), h.ProducerPID, live.Age.Round(time.Millisecond))
	}
	if h.State == abi.StateRunning {
		logf("replacing the stale region %s left by pid %d (%s)", path, h.ProducerPID, live.Reason)
	}
	return nil
}

func pidAlive(pid int) bool { return sys.ProcessState(pid) == sys.PidAlive }

func (p *Provider) openCounters() error {
	root := p.cfg.Root
	p.sys = pmu.LoadSystem(root)
	possible, err := readCPUList(filepath.Join(root, "sys/devices/system/cpu/possible"))
	if err != nil || len(possible) == 0 {
		return fmt.Errorf("read possible CPUs: %v", err)
	}
	p.rows = possible[len(possible)-1] + 1
	if p.rows > abi.MaxCPUs {
		return fmt.Errorf("%d possible CPUs, more than %d", p.rows, abi.MaxCPUs)
	}
	// Every possible CPU: one offline now is sampled once it comes
	// online (hotplug.go).
	p.cpus = possible
	online, oerr := pmu.OnlineCPUs(root)
	p.pmuIDs = p.cfg.Presets
	p.vals = make([]pmu.Value, len(p.pmuIDs))
	p.slots = make([]uint64, pmu.NumPresets)
	p.pmuR = make([]*pmu.Reader, len(p.cpus))
	p.muxGroup = make([][]int, len(p.cpus))
	p.life = make([]cpuLife, len(p.cpus))
	p.muxMap = make([]uint64, len(p.cpus))
	// why[i]: the reason preset i is unavailable on every CPU so far.
	ok := make([]bool, pmu.NumPresets)
	why := make([]*Unavailable, pmu.NumPresets)
	for ci, cpu := range p.cpus {
		if cpu >= p.rows {
			continue
		}
		if oerr == nil && len(online) > 0 && !slices.Contains(online, cpu) {
			p.life[ci].down = true
			continue
		}
		p.life[ci].opened = true
		r, err := pmu.OpenCPU(cpu, p.pmuIDs, &pmu.Options{System: p.sys, Group: true})
		if err != nil {
			for _, id := range p.pmuIDs {
				if why[id] == nil {
					why[id] = unavailableOf(pmu.PresetID(id).String(), err)
				}
			}
			continue
		}
		p.pmuR[ci] = r
		p.planMux(ci, r)
		for i, id := range p.pmuIDs {
			if e := r.Err(i); e != nil {
				if why[id] == nil {
					why[id] = unavailableOf(pmu.PresetID(id).String(), e)
				}
			} else {
				ok[id] = true
			}
		}
	}
	asked := make([]bool, pmu.NumPresets)
	for _, id := range p.pmuIDs {
		asked[id] = true
	}
	for _, pr := range pmu.Presets() {
		switch {
		case !asked[pr.ID]:
			p.unavail = append(p.unavail, Unavailable{What: pr.Name, Source: abi.InfoSourceConfig, Cause: "it was not selected (kushm serve --presets)"})
		case !ok[pr.ID]:
			p.unavail = append(p.unavail, *why[pr.ID])
		case !pr.Software && pr.ID != pmu.PAPI_L3_TCA && pr.ID != pmu.PAPI_L3_TCM:
			// Core hardware presets can also be counted per process.
			p.procHW = append(p.procHW, pr.ID)
		}
	}

	// MSRs: find once, per CPU, which entries read; the rest are n/a.
	p.mslots = make([]uint64, msr.NumMSRs)
	p.msrIDs = make([][]msr.ID, len(p.cpus))
	mwhy := make([]*Unavailable, msr.NumMSRs)
	mok := make([]bool, msr.NumMSRs)
	if !p.cfg.NoMSR {
		p.msrR = msr.Open(&msr.Options{Root: root})
		for ci, cpu := range p.cpus {
			if p.life[ci].down {
				continue // probed when it comes online
			}
			for _, e := range msr.Catalogue() {
				if _, _, err := p.msrR.ReadRaw(cpu, e.ID); err != nil {
					if mwhy[e.ID] == nil {
						mwhy[e.ID] = unavailableOf(e.Name, err)
					}
					continue
				}
				mok[e.ID] = true
				p.msrIDs[ci] = append(p.msrIDs[ci], e.ID)
			}
		}
	}
	p.procStat = filepath.Join(root, "proc/stat")
	p.cpuStatBuf = make([]byte, 4096+256*len(p.cpus))
	if b, err := os.ReadFile(p.procStat); err != nil {
		for _, n := range cpuTimeNames {
			p.unavail = append(p.unavail, *errs.NewUnavailable(n, abi.InfoSourceProcfs, errs.ErrNoSource, err, "%s cannot be read (%v)", p.procStat, err))
		}
	} else if _, err := parseCPUTimes(b); err != nil {
		for _, n := range cpuTimeNames {
			p.unavail = append(p.unavail, *errs.NewUnavailable(n, abi.InfoSourceProcfs, nil, err, "%s: %v", p.procStat, err))
		}
	}
	for _, e := range msr.Catalogue() {
		switch {
		case p.cfg.NoMSR:
			p.unavail = append(p.unavail, Unavailable{What: e.Name, Source: abi.InfoSourceConfig, Cause: "MSR sampling is off (kushm serve --no-msr)"})
		case !mok[e.ID]:
			p.unavail = append(p.unavail, *mwhy[e.ID])
		}
	}
	return nil
}

// unavailableOf is why what cannot be read, from the error pmu or msr
// returned, with the fix when a privilege is missing.
func unavailableOf(what string, err error) *Unavailable {
	u := &Unavailable{What: what, Cause: err.Error(), Err: err}
	var ue *Unavailable
	if errors.As(err, &ue) {
		c := *ue
		u = &c
		u.What = what
	}
	if errors.Is(err, errs.ErrPermission) {
		switch u.Source {
		case abi.InfoSourcePerf:
			u.Cause += "; fix: run kushm serve as root or with CAP_PERFMON, or allow per-CPU counting with sysctl kernel.perf_event_paranoid=0"
		default:
			u.Cause += "; fix: run kushm serve as root (MSRs need CAP_SYS_RAWIO, energy files root)"
		}
	}
	return u
}

func readCPUList(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return pmu.ParseCPUList(strings.TrimSpace(string(b)))
}

// InfoText is the content of the "info" section: note lines describing
// the provider, then one entry per counter that cannot be read, in the
// format of docs/region-format.md §9 (abi.AppendInfoEntry).
func (p *Provider) InfoText() string {
	cpus := fmt.Sprintf("%d CPUs", len(p.cpus))
	if off := p.offlineCPUs(); len(off) > 0 {
		// The CPUs whose rows are n/a from the start, and why.
		cpus += fmt.Sprintf(" (offline when the daemon started, n/a until online: %s)", pmu.FormatCPUList(off))
	}
	b := abi.AppendInfoNote(nil, fmt.Sprintf("%s: %s sampled every %v, processes: %s every %v",
		Name, cpus, p.cfg.Interval, p.cfg.Watch, p.cfg.ProcInterval))
	note := "per process: page faults and CPU time from /proc/<pid>/stat"
	if len(p.procHW) > 0 {
		note += fmt.Sprintf("; hardware presets from perf_event_open per process (up to %d processes)", maxProcPerf)
	}
	b = abi.AppendInfoNote(b, note)
	b = abi.AppendInfoNote(b, "per CPU: "+p.Sampler())
	if p.cg != nil && p.cg.reason == "" {
		switch {
		case p.cg.bpf != nil:
			b = abi.AppendInfoNote(b, fmt.Sprintf("per cgroup: every cgroup v2 of the machine, charged at each context switch by a BPF program (tp_btf sched_switch), copied every %v", p.cfg.CgroupInterval))
		default:
			b = abi.AppendInfoNote(b, fmt.Sprintf("per cgroup: %s and its children, perf cgroup events (%d descriptors), every %v", p.cfg.CgroupParent, p.cg.fds, p.cfg.CgroupInterval))
		}
	}
	for _, u := range p.unavail {
		b = abi.AppendInfoEntry(b, u.Entry())
	}
	return string(b)
}

// schemas returns the columns of the well-known sections from their one
// declaration (abi.Sections), which the kernel module's generated column
// table also comes from.
func schemas() (map[string][]shm.ColumnSpec, error) {
	cat := abi.Catalogues{abi.CatPMU: pmu.SchemaCatalogue(), abi.CatMSR: msr.SchemaCatalogue()}
	out := map[string][]shm.ColumnSpec{}
	for _, s := range abi.Sections {
		cols, err := s.Expand(cat)
		if err != nil {
			return nil, fmt.Errorf("schema: %w", err)
		}
		out[s.Name] = cols
	}
	return out, nil
}

// Layout is the region layout the provider creates for ncpus rows, with
// the default cgroup capacity.
func Layout(ncpus, procCapacity int, info string) (shm.Layout, error) {
	return layout(ncpus, procCapacity, DefaultCgroupCapacity, info)
}

func layout(ncpus, procCapacity, cgroupCapacity int, info string) (shm.Layout, error) {
	cols, err := schemas()
	if err != nil {
		return shm.Layout{}, err
	}
	procs, err := rcuhash.Spec(abi.SecNameProcs, rcuhash.Geometry{
		Capacity: procCapacity, NSlots: 1,
		ValueSize: int(unsafe.Sizeof(abi.ProcStat{})), DataSize: int(unsafe.Sizeof(abi.ProcData{})),
	}, cols[abi.SecNameProcs])
	if err != nil {
		return shm.Layout{}, err
	}
	sysc, err := rcuhash.Spec(abi.SecNameSyscalls, rcuhash.Geometry{
		Capacity: abi.NumSyscallOverrides, NSlots: 1, ValueSize: abi.SyscallSlotSize,
	}, cols[abi.SecNameSyscalls])
	if err != nil {
		return shm.Layout{}, err
	}
	pmux, err := rcuhash.Spec(abi.SecNameProcsMux, rcuhash.Geometry{
		Capacity: maxProcPerf, NSlots: 1,
		ValueSize: int(unsafe.Sizeof(abi.ProcMux{})), DataSize: int(unsafe.Sizeof(abi.ProcMuxData{})),
	}, cols[abi.SecNameProcsMux])
	if err != nil {
		return shm.Layout{}, err
	}
	cgs, err := cgroupSpec(ncpus, cgroupCapacity, cols[abi.SecNameCgroups])
	if err != nil {
		return shm.Layout{}, err
	}
	return shm.Layout{
		NCPUs: ncpus, ProducerKind: abi.ProducerDaemon, ProducerName: Name + " " + Version,
		HeartbeatPeriod: HeartbeatPeriod,
		Sections: []shm.SectionSpec{
			atomicarr.Spec(abi.SecNamePMU, ncpus, pmu.NumPresets, cols[abi.SecNamePMU]),
			atomicarr.Spec(abi.SecNameMSR, ncpus, msr.NumMSRs, cols[abi.SecNameMSR]),
			atomicarr.Spec(abi.SecNameCPUTime, ncpus, NumCPUTime, cols[abi.SecNameCPUTime]),
			procs,
			sysc,
			atomicarr.Spec(abi.SecNamePMUMux, ncpus, abi.NumPMUMux, cols[abi.SecNamePMUMux]),
			pmux,
			cgs,
			shm.ControlSpec(),
			shm.TextSpec(abi.SecNameInfo, info),
		},
	}, nil
}

// Version is written into the producer name.
var Version = "0.1.0"

func (p *Provider) createRegion() error {
	l, err := layout(p.rows, p.cfg.ProcCapacity, p.cfg.CgroupCapacity, p.InfoText())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p.path), 0o755); err != nil {
		return fmt.Errorf("create directory for %s: %w", p.path, err)
	}
	r, adopted := p.tryAdopt(l)
	if !adopted {
		if r, err = shm.Create(p.path, l, p.cfg.Files); err != nil {
			if errors.Is(err, os.ErrPermission) {
				return fmt.Errorf("%w (run as a user that may write %s, or choose another --region)", err, filepath.Dir(p.path))
			}
			return err
		}
	}
	p.region = r
	p.adopted = adopted
	fail := func(err error) error {
		r.Stop()
		r.Close()
		p.region = nil
		return err
	}
	if p.pmuArr, err = atomicarr.Open(r, abi.SecNamePMU); err != nil {
		return fail(err)
	}
	if p.msrArr, err = atomicarr.Open(r, abi.SecNameMSR); err != nil {
		return fail(err)
	}
	if p.muxArr, err = atomicarr.Open(r, abi.SecNamePMUMux); err != nil {
		return fail(err)
	}
	if p.cpuTimeArr, err = atomicarr.Open(r, abi.SecNameCPUTime); err != nil {
		return fail(err)
	}
	if p.procs, err = rcuhash.OpenWriter(r, abi.SecNameProcs); err != nil {
		return fail(err)
	}
	if p.cgroups, err = rcuhash.OpenWriter(r, abi.SecNameCgroups); err != nil {
		return fail(err)
	}
	if p.procsMux, err = rcuhash.OpenWriter(r, abi.SecNameProcsMux); err != nil {
		return fail(err)
	}
	if adopted {
		// The previous producer's perf counters are gone: its process
		// and cgroup entries are re-made by the first samples.
		for _, t := range []*rcuhash.Table{p.procs, p.cgroups, p.procsMux} {
			for _, k := range t.Keys() {
				_ = t.Delete(k)
			}
		}
	}
	if s, err := r.Section(abi.SecNameControl); err == nil && r.Writable(s) {
		if b, err := r.Bytes(s); err == nil && len(b) >= abi.ControlHeadSize {
			p.ctl = b
		}
	}
	return nil
}

// tryAdopt takes over the region at the path when the previous producer
// (stopped or dead: checkBusy ran) left one with exactly this layout,
// the same info text and the requested file modes: readers that map it
// keep reading, and the control settings are kept. Otherwise the region
// is re-created.
func (p *Provider) tryAdopt(l shm.Layout) (*shm.Region, bool) {
	st, err := os.Stat(p.path)
	if err != nil {
		return nil, false
	}
	want := p.cfg.Files.Mode
	if want == 0 {
		want = 0o640
	}
	wantCtl := p.cfg.Files.ControlMode
	if wantCtl == 0 {
		wantCtl = 0o660
	}
	cst, err := os.Stat(p.path + ".ctl")
	if err != nil || st.Mode().Perm() != want || cst.Mode().Perm() != wantCtl {
		return nil, false
	}
	if gid := p.cfg.Files.GID; gid > 0 {
		for _, fi := range []os.FileInfo{st, cst} {
			if s, ok := sys.StatOf(fi); !ok || int(s.GID) != gid {
				return nil, false
			}
		}
	}
	// Never adopt while the previous producer process lives (stalled,
	// stopped by a signal): it could resume writing. A new file (Create
	// renames it into place) leaves it writing to its old, unlinked one.
	if old, err := shm.Open(p.path, shm.Options{AllowStale: true}); err == nil {
		h := old.Header()
		old.Close()
		self := int(h.ProducerPID) == os.Getpid() && h.State == abi.StateStopped
		if h.ProducerPID == 0 || (!self && pidAlive(int(h.ProducerPID))) {
			return nil, false
		}
	} else {
		return nil, false
	}
	r, err := shm.Adopt(p.path, l, p.cfg.Files)
	if err != nil {
		p.cfg.Logf("re-creating %s: %v", p.path, err)
		return nil, false
	}
	info := ""
	if s, err := r.Section(abi.SecNameInfo); err == nil {
		if b, err := r.Bytes(s); err == nil {
			info, _, _ = strings.Cut(string(b), "\x00")
		}
	}
	if info != p.InfoText() {
		p.cfg.Logf("re-creating %s: what this machine can count changed", p.path)
		r.Stop()
		r.Close()
		return nil, false
	}
	// Rows the dead producer left mid-update are completed (every slot
	// n/a until this producer's first sample).
	for _, name := range []string{abi.SecNamePMU, abi.SecNameMSR} {
		if a, err := atomicarr.Open(r, name); err == nil {
			if n, err := a.Repair(); err != nil || n > 0 {
				p.cfg.Logf("%s: repaired %d rows left mid-update (%v)", name, n, err)
			}
		}
	}
	h := r.Header()
	p.cfg.Logf("adopted %s (generation %d): readers keep their mapping, control settings kept", p.path, h.Generation)
	return r, true
}

// Adopted reports whether the provider took over an existing region
// rather than creating one.
func (p *Provider) Adopted() bool { return p.adopted }

// Path is the region's path.
func (p *Provider) Path() string { return p.path }

// Region is the region the provider writes (valid until Close).
func (p *Provider) Region() *shm.Region { return p.region }

// Unavailable lists the counters this machine cannot provide, and why.
func (p *Provider) Unavailable() []Unavailable { return append([]Unavailable(nil), p.unavail...) }

// CPUs are the CPUs sampled: every possible CPU (one offline has n/a
// rows until it comes online).
func (p *Provider) CPUs() []int { return append([]int(nil), p.cpus...) }

// OfflineCPUs counts the CPUs sampled that are offline (their rows n/a),
// as of the last sample.
func (p *Provider) OfflineCPUs() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.offlineCPUs())
}

func (p *Provider) offlineCPUs() []int {
	var out []int
	for ci, l := range p.life {
		if l.down {
			out = append(out, p.cpus[ci])
		}
	}
	return out
}

// Interval is the sampling interval in force (Config.Interval, or the
// control section's valid override).
func (p *Provider) Interval() time.Duration { return time.Duration(p.interval.Load()) }

// Stats returns the provider's counters.
func (p *Provider) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Watched = len(p.watched)
	s.Interval = p.Interval()
	if p.smp != nil {
		s.SamplerRestarts = p.smp.restarts.Load()
	}
	return s
}

// Run samples until ctx is done, then marks the region stopped (Close
// still has to be called). It samples once at the start, then every
// Interval; the heartbeat is refreshed at least every 250 ms.
//
// Between ticks it sleeps on a sys.Alarm (a timerfd in the netpoller),
// not a Go timer: with no Go timer pending the runtime's monitor thread
// stays asleep, so a tick wakes one thread instead of two
// (docs/benchmarks.md, "the daemon at 10 ms", third pass). Where no
// timerfd can be made (a seccomp filter), a Go timer does the same job.
func (p *Provider) Run(ctx context.Context) error {
	if err := p.Sample(); err != nil {
		return err
	}
	wait, err := alarmWaiter(ctx)
	if err != nil {
		p.cfg.Logf("sleeping on a Go timer between ticks: %v", err)
		wait = timerWaiter(ctx)
	}
	defer wait(0, 0)
	next := monoNs() + uint64(p.Interval())
	for {
		now := monoNs()
		at, period := now+uint64(heartbeatEvery), uint64(0)
		if next < at {
			at = next
			if iv := p.Interval(); iv <= heartbeatEvery {
				period = uint64(iv) // every wake is a sample: a periodic alarm
			}
		}
		if !wait(at, period) {
			return p.Stop()
		}
		p.readControl()
		now = monoNs()
		if now >= next {
			if err := p.Sample(); err != nil {
				return err
			}
			next += uint64(p.Interval())
			if next < now {
				next = now + uint64(p.Interval())
			}
		} else if err := p.heartbeat(); err != nil {
			return err
		}
	}
}

// A waiter sleeps until the monotonic time at (ns) and reports true, or
// reports false once ctx is done; wait(0, 0) releases it. period, when
// not 0, says the following wakes will come every period after at (an
// alarm set periodic once is not set again at every tick).
type waiter func(at, period uint64) bool

// alarmWaiter sleeps on a sys.Alarm that ctx's end closes.
func alarmWaiter(ctx context.Context) (waiter, error) {
	a, err := sys.NewAlarm()
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { a.Close() })
	return func(at, period uint64) bool {
		if at == 0 {
			stop()
			a.Close()
			return false
		}
		// ctx's end closes a: SetPeriodic or Wait then says ErrClosed.
		// Another error (a failed read of the timerfd) only cuts one
		// sleep short.
		if pend, per := a.Pending(); pend != at || per != period || period == 0 {
			if err := a.SetPeriodic(at, period); errors.Is(err, sys.ErrClosed) {
				return false
			}
		}
		return !errors.Is(a.Wait(), sys.ErrClosed)
	}, nil
}

// timerWaiter sleeps on a Go timer.
func timerWaiter(ctx context.Context) waiter {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return func(at, _ uint64) bool {
		if at == 0 {
			t.Stop()
			return false
		}
		t.Reset(time.Duration(int64(at) - int64(monoNs())))
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
}

func (p *Provider) heartbeat() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("provider closed")
	}
	return p.region.Heartbeat()
}

// Sample takes one per-CPU sample (and a process sample when
// ProcInterval has passed) and refreshes the heartbeat.
func (p *Provider) Sample() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("sample: provider closed")
	}
	p.sampleAll(time.Now(), false)
	return p.region.Heartbeat()
}

// SampleAll takes one complete sample now: the CPUs, the watched
// processes and the cgroups, whatever ProcInterval and CgroupInterval
// say, so that every section a reader then reads was copied by this one
// call (what a test comparing sections needs).
func (p *Provider) SampleAll() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("sample: provider closed")
	}
	p.sampleAll(time.Now(), true)
	return p.region.Heartbeat()
}

// sampleAll takes one per-CPU sample, and a process sample and a cgroup
// copy when their intervals have passed (always the first time, and
// always when all is set). The caller holds p.mu (or is New, before
// anyone else sees p).
func (p *Provider) sampleAll(start time.Time, all bool) {
	p.sampleCPUs(all)
	p.stats.LastTick = time.Since(start)
	p.stats.Ticks++
	if all || p.lastProc.IsZero() || start.Sub(p.lastProc) >= p.cfg.ProcInterval-p.cfg.ProcInterval/20 {
		p.lastProc = start
		p.sampleProcs()
		p.stats.ProcTicks++
	}
	if all || p.lastCg.IsZero() || start.Sub(p.lastCg) >= p.cfg.CgroupInterval-p.cfg.CgroupInterval/20 {
		p.lastCg = start
		p.sampleCgroups()
	}
}

// SampleCPUs takes one per-CPU sample only (what the overhead benchmark
// measures).
func (p *Provider) SampleCPUs() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.sampleCPUs(false)
	}
}

// sampleCPUs writes every CPU's rows: from the BPF sampler's latest
// samples when it runs, or read now (direct: always read now, what
// SampleAll promises).
func (p *Provider) sampleCPUs(direct bool) {
	now := monoNs()
	for ci, cpu := range p.cpus {
		if cpu >= p.rows {
			continue
		}
		var valid uint64
		clear(p.slots)
		read, write, at := false, true, now
		l := &p.life[ci]
		if l.down && !p.revive(ci, cpu, now) {
			p.publishNA(ci, cpu, now)
			continue
		}
		if p.pmuR[ci] != nil {
			read, write, at = p.readCPU(ci, cpu, now, direct)
			for _, v := range p.vals {
				if read && v.OK {
					p.slots[v.Preset] = v.Scaled + base(l.pmuBase, int(v.Preset))
					valid |= 1 << v.Preset
				}
			}
		}
		if write {
			_ = p.pmuArr.Update(cpu, at, valid, p.slots)
			keep(l.pmuLast[:], p.slots, valid)
			p.sampleMux(ci, cpu, at, read)
		}
		if p.msrR != nil && len(p.msrIDs[ci]) > 0 {
			clear(p.mslots)
			if l.down {
				// Offline: its perf msr events are dead, and /dev/cpu
				// reads fail.
				_ = p.msrArr.Update(cpu, now, 0, p.mslots)
				continue
			}
			if mvalid, ok := p.sampledMSR(ci); ok {
				// Every entry came with this CPU's sample (perf msr
				// events): the row takes the sample's time.
				if write {
					_ = p.msrArr.Update(cpu, at, mvalid, p.mslots)
					keep(l.msrLast[:], p.mslots, mvalid)
				}
				continue
			}
			var mvalid uint64
			for _, id := range p.msrIDs[ci] {
				raw, _, err := p.msrR.ReadRaw(cpu, id)
				if err != nil {
					continue // n/a this time: the valid bit stays clear
				}
				p.mslots[id] = raw.Value + base(l.msrBase, int(id))
				mvalid |= 1 << id
			}
			_ = p.msrArr.Update(cpu, now, mvalid, p.mslots)
			keep(l.msrLast[:], p.mslots, mvalid)
		}
	}
	p.sampleCPUTime(now)
	p.rearmSampler(now)
}

// readCPU reads CPU ci's counters into p.vals: from the BPF sampler's
// latest sample, or read now. write is false when the sample is the one
// already published; at is the reading's time. Events found dead
// (hotplug.go) are opened again when the CPU is online; otherwise
// nothing was read.
func (p *Provider) readCPU(ci, cpu int, now uint64, direct bool) (read, write bool, at uint64) {
	write, at = true, now
	if t, fresh, ok := p.sampled(ci, cpu, now, direct); ok {
		read, write, at = true, fresh, t
	} else if err := p.pmuR[ci].Read(p.vals); err == nil {
		read = true
		p.readAt(ci, now)
	}
	if !write || !p.dead(ci, at, read) {
		return read, write, at
	}
	if !p.revive(ci, cpu, now) {
		return false, true, now
	}
	if err := p.pmuR[ci].Read(p.vals); err != nil {
		return false, true, now
	}
	p.readAt(ci, now)
	return true, true, now
}

// base is b[i], or 0 past b's end (no base yet).
func base(b []uint64, i int) uint64 {
	if i < len(b) {
		return b[i]
	}
	return 0
}

// selectPIDs lists the processes the Watch selects.
func (p *Provider) selectPIDs() []int {
	w := p.cfg.Watch
	if w.None {
		return nil
	}
	if len(w.PIDs) > 0 {
		return w.PIDs
	}
	all, err := listPIDs(p.cfg.Root)
	if err != nil {
		return nil
	}
	out := all[:0]
	if w.Cgroup != "" {
		cg := cgroupRel(w.Cgroup)
		for _, pid := range all {
			b, err := os.ReadFile(filepath.Join(p.cfg.Root, "proc", strconv.Itoa(pid), "cgroup"))
			if err == nil && inCgroup(parseCgroupV2(b), cg) {
				out = append(out, pid)
			}
		}
		return out
	}
	uid := os.Geteuid()
	if w.UID != nil {
		uid = *w.UID
	}
	for _, pid := range all {
		if u, err := procUID(p.cfg.Root, pid); err == nil && int(u) == uid {
			out = append(out, pid)
		}
	}
	return out
}

// cgroupRel turns "/sys/fs/cgroup/a/b" or "/a/b" into "/a/b", the form
// of /proc/<pid>/cgroup.
func cgroupRel(cg string) string {
	cg = strings.TrimPrefix(filepath.Clean("/"+cg), "/sys/fs/cgroup")
	if cg == "" {
		cg = "/"
	}
	return cg
}

func (p *Provider) readStat(pid int) (procStat, error) {
	n, err := sys.ReadPseudoFile(filepath.Join(p.cfg.Root, "proc", strconv.Itoa(pid), "stat"), p.statBuf)
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(p.statBuf[:n])
}

func (p *Provider) sampleProcs() {
	pids := p.selectPIDs()
	seen := make(map[int]bool, len(pids))
	for _, pid := range pids {
		if pid <= 0 || seen[pid] {
			continue
		}
		st, err := p.readStat(pid)
		if err != nil {
			continue // exited (or not readable): dropped below
		}
		seen[pid] = true
		w := p.watched[pid]
		if w != nil && w.start != st.StartTime {
			p.drop(pid) // the pid was reused by another process
			w = nil
		}
		if w == nil {
			if w = p.add(pid, st); w == nil {
				delete(seen, pid)
				continue
			}
		} else if c := commBytes(st.Comm); c != w.data.Comm {
			// An exec (or a rename): the row takes the process's
			// name now, changed whole under the node's seq.
			w.data.Comm = c
			_ = p.procs.SetData(uint64(pid), procDataBytes(&w.data))
		}
		clear(p.procWords[:])
		cpuNs := (st.UTime + st.STime) * (1e9 / userHZ)
		p.procWords[pmu.SW_PAGE_FAULTS] = st.MinFlt + st.MajFlt
		p.procWords[pmu.SW_TASK_CLOCK] = cpuNs
		p.procWords[abi.ProcCounterRuntime] = cpuNs
		if w.hw != nil && w.hw.Read(w.vals) == nil {
			for _, v := range w.vals {
				if v.OK {
					p.procWords[v.Preset] = v.Scaled
				}
			}
			p.writeProcMux(pid, w)
		}
		_ = p.procs.UpdateWords(uint64(pid), 0, p.procWords[:])
	}
	for pid := range p.watched {
		if !seen[pid] {
			p.drop(pid)
		}
	}
}

const procSoftValid = 1<<pmu.SW_PAGE_FAULTS | 1<<pmu.SW_TASK_CLOCK | 1<<abi.ProcCounterRuntime

func (p *Provider) add(pid int, st procStat) *watched {
	w := &watched{start: st.StartTime, valid: procSoftValid}
	if len(p.procHW) > 0 && p.perfProcs() < maxProcPerf {
		// One group per up to 4 presets (pmu.Options.Group), so that a
		// process's ratios compare like with like; the times of each
		// group go to the procs_mux section.
		if r, err := pmu.OpenProcess(pid, p.procHW, &pmu.Options{System: p.sys, Inherit: true, Group: true}); err == nil {
			for i, id := range p.procHW {
				if r.Err(i) == nil {
					w.valid |= 1 << id
				}
			}
			if w.valid != procSoftValid {
				w.hw, w.hwIDs, w.vals = r, p.procHW, make([]pmu.Value, len(p.procHW))
				p.addProcMux(pid, w)
			} else {
				r.Close()
			}
		}
	}
	d := &w.data
	d.Comm = commBytes(st.Comm)
	d.PID = uint32(pid)
	if u, err := procUID(p.cfg.Root, pid); err == nil {
		d.UID = u
	}
	d.Valid = w.valid
	if err := p.procs.Insert(uint64(pid), procDataBytes(d), nil); err != nil {
		if errors.Is(err, shm.ErrFull) {
			p.stats.ProcsFull++
		}
		if w.hw != nil {
			w.hw.Close()
		}
		return nil
	}
	p.watched[pid] = w
	return w
}

// commBytes is a comm as the procs table stores it: at most 15 bytes, NUL
// padded.
func commBytes(comm string) (c [16]byte) {
	copy(c[:15], comm)
	return c
}

func procDataBytes(d *abi.ProcData) []byte {
	return (*[unsafe.Sizeof(abi.ProcData{})]byte)(unsafe.Pointer(d))[:]
}

func (p *Provider) perfProcs() int {
	n := 0
	for _, w := range p.watched {
		if w.hw != nil {
			n++
		}
	}
	return n
}

func (p *Provider) drop(pid int) {
	if w := p.watched[pid]; w != nil && w.hw != nil {
		w.hw.Close()
	}
	delete(p.watched, pid)
	_ = p.procs.Delete(uint64(pid))
	if p.procsMux != nil && p.procsMux.Has(uint64(pid)) {
		_ = p.procsMux.Delete(uint64(pid))
	}
}

// WatchedPIDs returns the pids in the procs table, sorted.
func (p *Provider) WatchedPIDs() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]int, 0, len(p.watched))
	for pid := range p.watched {
		out = append(out, pid)
	}
	sort.Ints(out)
	return out
}

// Stop marks the region stopped cleanly: readers see the final data and a
// stale producer. Sampling ends.
func (p *Provider) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.region == nil {
		return nil
	}
	return p.region.Stop()
}

// Close stops sampling, marks the region stopped, unmaps it and closes
// every counter. The region file stays (readers see "stopped"); remove it
// with shm.Remove for good.
func (p *Provider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	var err error
	if p.region != nil {
		err = p.region.Stop()
		if e := p.region.Close(); err == nil {
			err = e
		}
	}
	for pid, w := range p.watched {
		if w.hw != nil {
			w.hw.Close()
		}
		delete(p.watched, pid)
	}
	p.closeReaders()
	if p.procStatOpen {
		sys.Close(p.procStatFD)
		p.procStatOpen = false
	}
	return err
}

func (p *Provider) closeReaders() {
	// The BPF programs read the per-CPU events: stop them first.
	p.smp.close()
	p.cg.close()
	for i, r := range p.pmuR {
		if r != nil {
			r.Close()
			p.pmuR[i] = nil
		}
	}
	if p.msrR != nil {
		p.msrR.Close()
		p.msrR = nil
	}
}
