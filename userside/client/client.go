package client

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/errs"
	"github.com/kushm/kushm/internal/sanitize"
	"github.com/kushm/kushm/internal/sys"
	"github.com/kushm/kushm/msr"
	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
)

// Options configure Open.
type Options struct {
	// Path of the region; "" discovers it (see Discover).
	Path string
	// Root of the /dev, /sys and /proc trees for discovery ("" is "/").
	Root string
	// AllowStale opens a region whose producer stopped or died and
	// reads its last data, instead of failing with shm.ErrStaleProducer.
	AllowStale bool
	// ProducerUIDs are users, besides root and this process's user,
	// trusted to produce a discovered region (a daemon run as its own
	// user). A discovered region owned by anyone else is refused with
	// shm.ErrUntrusted: /dev/shm is world-writable. A region named by
	// Path is not owner-checked (its .ctl file always is).
	ProducerUIDs []uint32
	// WritableControl maps the control section writable, for the
	// Set methods (syscall thresholds); it needs write permission on the
	// region's control file (<region>.ctl, or the module's device).
	WritableControl bool
}

// ProducerUIDEnv names the environment variable the kushm command reads
// for Options.ProducerUIDs (comma-separated uids), as its --producer-uid.
const ProducerUIDEnv = "KUSHM_PRODUCER_UID"

// openRegion maps the region of o (o.Path, else the first candidate
// that opens, owner-checked) with ro; ro.CheckOwner and ro.ProducerUIDs
// are set from o. Open is the one way readers open a region.
func openRegion(o Options, ro shm.Options) (*shm.Region, error) {
	if o.Path != "" {
		return shm.Open(o.Path, ro)
	}
	ro.CheckOwner, ro.ProducerUIDs = true, o.ProducerUIDs
	var first error
	for _, p := range Candidates(o.Root) {
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		r, err := shm.Open(p, ro)
		if err == nil {
			return r, nil
		}
		if first == nil {
			first = err
		}
	}
	if first == nil {
		_, first = Discover(o.Root)
	}
	return nil, first
}

// Client is a read-only view of a kushm region. Its reads are loads from
// shared memory: no system call per counter.
//
// A Client is safe for concurrent use; it and everything it returns is
// valid until Close.
type Client struct {
	r     *shm.Region
	pmu   *atomicarr.Array
	msr   *atomicarr.Array
	cpuT  *atomicarr.Array // cputime, nil when absent
	mux   *atomicarr.Array // pmu_mux, nil when absent
	procs *rcuhash.Table
	pmux  *rcuhash.Table // procs_mux, nil when absent
	info  []Unavailable
	notes []string
}

// MaxProcesses is the largest procs table a Client reads (the kernel
// module's procs_capacity and the daemon's ProcCapacity stay within it):
// a bigger one is ignored, with a note, so that no region can make a
// query walk and copy millions of entries.
const MaxProcesses = 1 << 16

// Candidates returns the region paths Discover tries under root, in
// order: the kernel module's device, its debugfs file, the daemon's file.
func Candidates(root string) []string {
	if root == "" {
		root = "/"
	}
	return []string{
		filepath.Join(root, shm.DevicePath),
		filepath.Join(root, shm.DebugfsPath),
		filepath.Join(root, shm.DaemonPath),
	}
}

// Discover returns the path of the region to read under root: the first
// of Candidates that exists. It fails with an error wrapping
// shm.ErrNoRegion, naming the paths tried and the fix, when none does.
func Discover(root string) (string, error) {
	c := Candidates(root)
	for _, p := range c {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("find region: none of %s exists: %w", strings.Join(c, ", "), errNoProducerHint)
}

var errNoProducerHint = fmt.Errorf("%w: no producer is running (start the daemon with 'kushm serve', or load the kernel module)", shm.ErrNoRegion)

// Open maps a region read-only and checks that its producer is alive.
// Errors wrap shm's sentinels (shm.ErrNoRegion, shm.ErrStaleProducer,
// shm.ErrBadMagic, shm.ErrExists, fs.ErrPermission ...) and say what to
// do about them.
func Open(o Options) (*Client, error) {
	r, err := openRegion(o, shm.Options{AllowStale: true, WritableControl: o.WritableControl})
	if err != nil {
		return nil, explain(err)
	}
	path := r.Path()
	if err := checkCPUs(o.Root, r.Header().NCPUs); err != nil {
		r.Close()
		return nil, fmt.Errorf("open region %s: %w", path, err)
	}
	if !o.AllowStale {
		if err := r.CheckProducer(); err != nil {
			h := r.Header()
			r.Close()
			return nil, fmt.Errorf("open region %s: %s pid %d: %w; restart the producer ('kushm serve'), or pass --allow-stale to read its last data",
				path, strings.TrimSpace(h.ProducerName), h.ProducerPID, err)
		}
	}
	return FromRegion(r), nil
}

// FromRegion returns a Client reading r (from shm.Open, or shm.FromBytes
// for a saved image). It does not check the producer's liveness. Close
// closes r.
func FromRegion(r *shm.Region) *Client {
	c := &Client{r: r}
	// Sections are optional: a producer may lack one (the reader reports
	// n/a for everything in it).
	c.pmu, _ = atomicarr.Open(r, abi.SecNamePMU)
	c.msr, _ = atomicarr.Open(r, abi.SecNameMSR)
	c.cpuT, _ = atomicarr.Open(r, abi.SecNameCPUTime)
	c.mux, _ = atomicarr.Open(r, abi.SecNamePMUMux)
	c.pmux, _ = rcuhash.Open(r, abi.SecNameProcsMux)
	c.procs, _ = rcuhash.Open(r, abi.SecNameProcs)
	if n := c.procs; n != nil && n.NSlots() != 1 && n.NSlots() != int(r.Header().NCPUs) {
		// Value slots are one, or one per CPU: more is a lie that would
		// cost every process read time and memory.
		c.notes = append(c.notes, fmt.Sprintf("procs table with %d value slots for %d CPUs: ignored (%v)", n.NSlots(), r.Header().NCPUs, shm.ErrCorrupt))
		c.procs = nil
	}
	if c.procs != nil && c.procs.Capacity() > MaxProcesses {
		// Bounded work: a region may claim a table of 2^24 live nodes.
		c.notes = append(c.notes, fmt.Sprintf("procs table of %d entries exceeds the %d this reader reads: ignored (%v)", c.procs.Capacity(), MaxProcesses, shm.ErrCorrupt))
		c.procs = nil
	}
	if s, err := r.Section(abi.SecNameInfo); err == nil && s.Kind == abi.SecText {
		if txt, truncated, err := r.Text(s, shm.MaxText); err == nil {
			var notes []string
			c.info, notes = ParseInfo([]byte(txt))
			c.notes = append(notes, c.notes...) // the producer's first, then the reader's
			if truncated {
				c.notes = append(c.notes, fmt.Sprintf("info text longer than %d bytes: the rest is not read", shm.MaxText))
			}
		}
	}
	return c
}

// explain adds the cause and the fix to an open error.
func explain(err error) error {
	var pe *fs.PathError
	path := ""
	if errors.As(err, &pe) {
		path = pe.Path
	}
	switch {
	case errors.Is(err, shm.ErrNoRegion):
		return err // shm names the fix: start a producer
	case errors.Is(err, fs.ErrPermission):
		hint := ""
		if st, e := os.Stat(path); e == nil {
			if s, ok := sys.StatOf(st); ok {
				hint = fmt.Sprintf(" (mode %v, owner uid %d, group gid %d)", st.Mode().Perm(), s.UID, s.GID)
			}
		}
		return fmt.Errorf("%w%s: run as the region's owner or join its group (the operator sets it with 'kushm serve --group')", err, hint)
	case errors.Is(err, shm.ErrBadMagic), errors.Is(err, shm.ErrExists), errors.Is(err, shm.ErrTruncated):
		return fmt.Errorf("%w: not a usable kushm region (another file holds the path, or it was truncated): remove it or pass --region", err)
	case errors.Is(err, shm.ErrUntrusted):
		return err
	case errors.Is(err, shm.ErrABIMismatch):
		return fmt.Errorf("%w: the producer and this reader disagree on the region format: use a kushm of the same major version", err)
	}
	return err
}

// Close unmaps the region.
func (c *Client) Close() error { return c.r.Close() }

// Path is the path of the region.
func (c *Client) Path() string { return c.r.Path() }

// Region is the underlying region (valid until Close).
func (c *Client) Region() *shm.Region { return c.r }

// CheckProducer returns an error wrapping shm.ErrStaleProducer when the
// producer stopped or died.
func (c *Client) CheckProducer() error { return c.r.CheckProducer() }

// NCPUs is the number of per-CPU rows.
func (c *Client) NCPUs() int { return int(c.r.Header().NCPUs) }

// Counter returns the cumulative value of preset p on cpu, and false
// when it is not available (the slot's valid bit is clear, the CPU is out
// of range, or the region has no pmu section): show "n/a", never 0. It is
// two atomic loads from shared memory and no system call. The value is
// consistent with itself; use SampleCPUs for all counters of one sample.
//
// Counter is the one unguarded read (a guard would double its cost): a
// loop of Counter calls that must survive the region file shrinking runs
// inside Client.Guard.
func (c *Client) Counter(cpu int, p pmu.PresetID) (uint64, bool) {
	return load(c.pmu, cpu, int(p))
}

// Guard runs f, a loop of Counter or MSR reads, and returns an error
// wrapping shm.ErrChanged instead of crashing with SIGBUS if the region
// file shrinks under the mapping meanwhile (shm.Guard). The other
// methods guard themselves.
func (c *Client) Guard(f func() error) error { return shm.Guard(f) }

// MSR returns the last raw value of MSR catalogue entry id on cpu, and
// false when it is not available.
func (c *Client) MSR(cpu int, id msr.ID) (uint64, bool) {
	return load(c.msr, cpu, int(id))
}

func load(a *atomicarr.Array, row, slot int) (uint64, bool) {
	if a == nil || slot < 0 || slot >= 64 {
		return 0, false
	}
	if a.Valid(row)&(1<<uint(slot)) == 0 {
		return 0, false
	}
	return a.Load(row, slot)
}

// CPUSample is a consistent snapshot of every CPU row of one section.
type CPUSample struct {
	Taken time.Time
	Rows  []atomicarr.Snapshot
	// Err[i] is set when row i could not be read consistently (the
	// writer died mid-update: shm.ErrRetry).
	Err []error
	// CPUTime is the cputime section (busy, idle, iowait, steal time),
	// sampled with the pmu rows by SamplePMU; nil when the region has
	// none.
	CPUTime *CPUSample
	// Mux is the pmu_mux section (time enabled/running of each event
	// group, and which presets share a group), sampled with the pmu
	// rows; nil when the region has none.
	Mux *CPUSample
}

// SamplePMU snapshots every row of the pmu section, and of the cputime
// section when the region has one (CPUSample.CPUTime). Like every method
// that reads the region, it returns an error wrapping shm.ErrChanged if
// the region file shrank under the mapping (the Client must then be
// closed and the region reopened).
func (c *Client) SamplePMU() (*CPUSample, error) {
	return guarded(c.samplePMU)
}

func (c *Client) samplePMU() (*CPUSample, error) {
	s, err := sample(c.pmu, "pmu")
	if err == nil && c.cpuT != nil {
		s.CPUTime, _ = sample(c.cpuT, "cputime")
	}
	if err == nil && c.mux != nil {
		s.Mux, _ = sample(c.mux, "pmu_mux")
	}
	return s, err
}

// SampleMSR snapshots every row of the msr section.
func (c *Client) SampleMSR() (*CPUSample, error) {
	return guarded(func() (*CPUSample, error) { return sample(c.msr, "msr") })
}

// guarded runs f under shm.Guard: a fault in the mapping (its file shrank)
// is an error wrapping shm.ErrChanged, not a SIGBUS.
func guarded[T any](f func() (T, error)) (T, error) {
	var v T
	err := shm.Guard(func() (err error) {
		v, err = f()
		return err
	})
	return v, err
}

func sample(a *atomicarr.Array, name string) (*CPUSample, error) {
	if a == nil {
		return nil, fmt.Errorf("sample %s: %w", name, shm.ErrNoSection)
	}
	s := &CPUSample{Taken: time.Now(), Rows: make([]atomicarr.Snapshot, a.Rows()), Err: make([]error, a.Rows())}
	for i := range s.Rows {
		s.Err[i] = a.Snapshot(i, &s.Rows[i])
	}
	return s, nil
}

// Proc is one process of the procs table.
type Proc struct {
	PID   int
	UID   uint32
	Comm  string
	Valid uint64 // bit i: Counters[i] is measured for this process
	// Counters are indexed by pmu preset id; abi.ProcCounterRuntime is
	// the on-CPU time in ns.
	Counters [abi.ProcCounters]uint64
	// Mux: how long the process's hardware counters were really counted
	// (the procs_mux section), nil when the producer publishes nothing
	// for it (no hardware counters of its own, or a producer without the
	// section).
	Mux *ProcMux
}

// ProcMux is one process's event groups: 4 bits per preset (g+1: in
// group g; 0: not known), and each group's time enabled and running.
type ProcMux struct {
	Groups           uint64
	Enabled, Running [abi.CgroupGroups]uint64
}

// Has reports whether counter i is measured for the process.
func (p *Proc) Has(i int) bool { return i >= 0 && i < 64 && p.Valid&(1<<uint(i)) != 0 }

func decodeProc(key uint64, data, val []byte, nslots, vsize int) Proc {
	le := binary.LittleEndian
	p := Proc{PID: int(key)}
	if d, err := abi.DecodeProcData(data); err == nil {
		p.Comm = sanitize.Line(strings.TrimRight(string(d.Comm[:]), "\x00"))
		p.UID = d.UID
		p.Valid = d.Valid
	}
	// Sum the slots (one per CPU for the kernel producer).
	for j := 0; j < nslots; j++ {
		s := val[j*vsize:]
		for i := 0; i < abi.ProcCounters && 8*i+8 <= vsize && 8*i+8 <= len(s); i++ {
			p.Counters[i] += le.Uint64(s[8*i:])
		}
	}
	return p
}

// Process reads one process's entry; the error wraps shm.ErrNotFound
// when the producer does not watch pid.
func (c *Client) Process(pid int) (Proc, error) {
	return guarded(func() (Proc, error) { return c.process(pid) })
}

func (c *Client) process(pid int) (Proc, error) {
	if c.procs == nil {
		return Proc{}, fmt.Errorf("read process %d: %w", pid, shm.ErrNoSection)
	}
	data := make([]byte, c.procs.DataSize())
	slots := make([]byte, c.procs.NSlots()*c.procs.ValueSize())
	if err := c.procs.Read(uint64(pid), data, slots); err != nil {
		return Proc{}, fmt.Errorf("read process %d: %w", pid, err)
	}
	return decodeProc(uint64(pid), data, slots, c.procs.NSlots(), c.procs.ValueSize()), nil
}

// Processes reads every process of the procs table.
func (c *Client) Processes() ([]Proc, error) {
	return guarded(c.processes)
}

func (c *Client) processes() ([]Proc, error) {
	if c.procs == nil {
		return nil, fmt.Errorf("read processes: %w", shm.ErrNoSection)
	}
	var out []Proc
	ns, vs := c.procs.NSlots(), c.procs.ValueSize()
	c.procs.Range(func(e *rcuhash.Entry) bool {
		out = append(out, decodeProc(e.Key, e.Data, e.Slots, ns, vs))
		return true
	})
	if c.pmux != nil && c.pmux.DataSize() >= 8 && c.pmux.ValueSize() >= 8*2*abi.CgroupGroups {
		data, val := make([]byte, c.pmux.DataSize()), make([]byte, c.pmux.NSlots()*c.pmux.ValueSize())
		le := binary.LittleEndian
		for i := range out {
			if c.pmux.Read(uint64(out[i].PID), data, val) != nil {
				continue
			}
			m := &ProcMux{Groups: le.Uint64(data)}
			for g := 0; g < abi.CgroupGroups; g++ {
				m.Enabled[g] = le.Uint64(val[8*g:])
				m.Running[g] = le.Uint64(val[8*(abi.CgroupGroups+g):])
			}
			out[i].Mux = m
		}
	}
	return out, nil
}

// Unavailable is a counter the producer cannot read, and why, as data
// (what, source, kind, errno, cause): kushm's one Unavailable type
// (internal/errs). Its Error method composes the sentence.
type Unavailable = errs.Unavailable

// ParseInfo parses an "info" text section (docs/region-format.md §9): its
// entries and its note lines. Other lines are ignored. It never fails.
func ParseInfo(b []byte) (un []Unavailable, notes []string) {
	entries, raw := abi.ParseInfo(b[:min(len(b), shm.MaxText)])
	for _, e := range entries {
		e.What, e.Source, e.Kind, e.Cause = sanitize.Line(e.What), sanitize.Line(e.Source), sanitize.Line(e.Kind), sanitize.Line(e.Cause)
		un = append(un, *errs.FromEntry(e))
	}
	for _, n := range raw {
		notes = append(notes, sanitize.Line(n))
	}
	return un, notes
}

// Unavailable lists what the producer cannot read on this machine.
func (c *Client) Unavailable() []Unavailable { return append([]Unavailable(nil), c.info...) }

// Notes are the producer's comment lines of the info section.
func (c *Client) Notes() []string { return append([]string(nil), c.notes...) }

// Why returns the reason counter name (a preset or MSR name) is not
// available, and false when the producer listed no reason.
func (c *Client) Why(name string) (string, bool) {
	for _, u := range c.info {
		if u.What == name {
			return u.Cause, true
		}
	}
	return "", false
}

// checkCPUs refuses a region that claims more CPUs than this machine can
// have (root's sys/devices/system/cpu/possible): both producers size their
// per-CPU rows and slots by it, so a larger claim was not made here, and
// would cost every reader time and memory. An unreadable list is no
// evidence either way.
func checkCPUs(root string, ncpus uint32) error {
	if root == "" {
		root = "/"
	}
	b, err := os.ReadFile(filepath.Join(root, "sys/devices/system/cpu/possible"))
	if err != nil {
		return nil
	}
	cpus, err := pmu.ParseCPUList(strings.TrimSpace(string(b)))
	if err != nil || len(cpus) == 0 {
		return nil
	}
	if max := cpus[len(cpus)-1] + 1; int(ncpus) > max {
		return fmt.Errorf("the region claims %d CPUs, this machine has %d possible: not produced here: %w", ncpus, max, shm.ErrCorrupt)
	}
	return nil
}
