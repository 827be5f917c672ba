package shm

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/sys"
)

// Well-known paths of a region, relative to the root option.
const (
	DevicePath  = "/dev/kushm"
	DebugfsPath = "/sys/kernel/debug/kushm/region"
	DaemonPath  = "/dev/shm/kushm"
)

// Region is a mapped kushm region.
//
// A Region is safe for concurrent use by multiple goroutines. Close
// releases its files at once, but never the memory a view may still use:
// views (atomicarr, rcuhash and ring tables) keep their Region reachable,
// and after Close they read zeros (a write lands in private memory), never
// a fault; the address range is unmapped once the Region and every view
// of it are unreachable (runtime.AddCleanup, as cilium/ebpf's Memory
// does). A slice from Bytes does not keep the Region reachable: keep the
// Region, or a view, alive while you use it.
type Region struct {
	path     string
	mem      []byte // whole region (read-only or read-write)
	ctl      []byte // the one control section mapped separately, may be nil
	ctlIdx   int    // index of the section ctl maps (-1: none)
	writable bool
	ctlRW    bool
	hdr      Header
	sections []Section
	closed   atomic.Bool
	image    bool // FromBytes: memory not ours to unmap
	fd       int  // memfd regions: the descriptor (0: none)
	// A reader keeps its descriptors to notice the files shrinking or
	// being replaced (Check); nil for producers and images.
	keep *kept
	// A producer keeps its control file to notice it changing.
	pctl *producerCtl
}

// kept are the files a reader opened, as they were at open.
type kept struct {
	fd, ctlFd int // ctlFd -1: no companion file mapped
	id, ctlID fileID
}

// fileID identifies a file: where it is and what it was at open.
type fileID struct {
	dev, ino uint64
	size     uint64 // bytes the mapping needs
	regular  bool
}

// Options for Open.
type Options struct {
	// WritableControl maps the user-writable control section read-write
	// (needs write permission on /dev/kushm or on the .ctl file).
	WritableControl bool
	// AllowStale opens a region whose producer is stale instead of
	// failing with ErrStaleProducer (the data is still readable).
	AllowStale bool
	// CheckOwner refuses (ErrUntrusted) a region file not owned by root,
	// by this process's user or by one of ProducerUIDs: set it for a
	// path found by discovery, where any user may have created the file
	// first. The .ctl file must always have the region file's owner.
	CheckOwner   bool
	ProducerUIDs []uint32
}

// MaxRegionSize is the largest region a reader maps.
const MaxRegionSize = 1 << 40

// Open maps the region at path read-only (the control section read-write
// with opts.WritableControl) and validates it. path may be a regular file
// (the daemon's /dev/shm/kushm), the debugfs file or the /dev/kushm
// device; anything else (a FIFO, a directory, a symbolic link) is refused
// with ErrExists before a byte is read, without blocking. A region whose
// producer is stale is refused with ErrStaleProducer unless
// opts.AllowStale.
func Open(path string, opts Options) (*Region, error) {
	r, err := open(path, opts)
	if err != nil {
		return nil, fmt.Errorf("open region %s: %w", path, err)
	}
	return r, nil
}

func open(path string, opts Options) (*Region, error) {
	fd, st, err := openChecked(path, sys.ORdonly)
	if err != nil {
		return nil, err
	}
	r := &Region{path: path, keep: &kept{fd: fd, ctlFd: -1}, ctlIdx: -1}
	ok := false
	defer func() {
		if !ok {
			unregister(r)
			r.unmap()
			r.closeFds()
		}
	}()
	if opts.CheckOwner {
		if err := checkOwner(path, st, opts.ProducerUIDs); err != nil {
			return nil, err
		}
	}
	regular := st.Mode&sys.TypeMask == sys.TypeReg
	if regular && st.Size < abi.HeaderAreaSize {
		return nil, fmt.Errorf("file has %d bytes, less than a header page: %w", st.Size, ErrTruncated)
	}
	// Character devices report size 0: read the header first.
	hdrBuf := make([]byte, abi.HeaderSize)
	n, err := sys.Pread(fd, hdrBuf, 0)
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	h, err := ParseHeader(hdrBuf[:n], ^uint64(0))
	if err != nil {
		return nil, err
	}
	if h.RegionSize > MaxRegionSize {
		return nil, corrupt("region_size %d > %d", h.RegionSize, uint64(MaxRegionSize))
	}
	if regular && uint64(st.Size) < h.RegionSize {
		return nil, fmt.Errorf("file has %d bytes, header says %d: %w", st.Size, h.RegionSize, ErrTruncated)
	}
	r.keep.id = fileID{dev: st.Dev, ino: st.Ino, size: h.RegionSize, regular: regular}
	if r.mem, err = sys.Mmap(fd, 0, int(h.RegionSize), sys.ProtRead); err != nil {
		return nil, fmt.Errorf("mmap %d bytes: %w", h.RegionSize, err)
	}
	register(r)
	// Re-parse from the mapping: the header bytes we validated and the
	// ones we use must be the same bytes (and a file shrunk since fstat
	// faults here, inside the guard).
	if err := r.Guard(func() error {
		h, err = ParseHeader(r.mem, uint64(len(r.mem)))
		if err != nil {
			return err
		}
		if h.RegionSize != uint64(len(r.mem)) {
			return fmt.Errorf("region_size changed from %d to %d while opening: %w", len(r.mem), h.RegionSize, ErrCorrupt)
		}
		r.hdr = h
		return r.loadSections(path, st, opts)
	}); err != nil {
		return nil, err
	}
	if !opts.AllowStale {
		if err := r.CheckProducer(); err != nil {
			return nil, err
		}
	}
	register(r) // again, with the control mapping
	ok = true
	return r, nil
}

// loadSections opens the companion file when a section lives there,
// parses the section table and maps the control section.
func (r *Region) loadSections(path string, st sys.FileStat, opts Options) error {
	cf := companion{fd: -1}
	if hasExternal(r.mem, r.hdr) {
		var err error
		if cf, err = openCompanion(path+".ctl", st.UID, opts.WritableControl); err != nil {
			return err
		}
	}
	r.keep.ctlFd = cf.fd // closed with the region, on failure too
	secs, err := ParseSections(r.mem, r.hdr, cf.size)
	if errors.Is(err, ErrTruncated) && cf.size > 0 {
		// The control file is shorter than its section (truncated by
		// a group member?): the section is missing, the rest readable.
		cf = cf.unusable(fmt.Sprintf("control file %s.ctl has %d bytes, too few for its section (truncated?): the producer re-creates it", path, cf.size))
		r.keep.ctlFd = -1
		if opts.WritableControl {
			return fmt.Errorf("%s: %w", cf.reason, ErrTruncated)
		}
		secs, err = ParseSections(r.mem, r.hdr, 0)
	}
	if err != nil {
		return err
	}
	for i := range secs {
		if secs[i].Missing && cf.reason != "" {
			secs[i].MissingReason = cf.reason
		}
	}
	r.sections = secs
	ci := controlIndex(secs)
	if ci < 0 {
		return nil
	}
	s := &secs[ci]
	prot := sys.ProtRead
	if opts.WritableControl {
		prot |= sys.ProtWrite
	}
	switch {
	case s.External() && s.Missing:
		if opts.WritableControl {
			return fmt.Errorf("control section: %s: %w", s.MissingReason, ErrNoSection)
		}
		return nil
	case s.External():
		r.ctl, err = sys.Mmap(cf.fd, int64(s.Offset), int(s.Size), prot)
		r.keep.ctlID = fileID{dev: cf.st.Dev, ino: cf.st.Ino, size: s.Offset + s.Size, regular: true}
	case opts.WritableControl:
		// Same file or device, mapped again read-write at the
		// section's offset (the module allows only these pages).
		var fd int
		if fd, _, err = openChecked(path, sys.ORdwr); err == nil {
			r.ctl, err = sys.Mmap(fd, int64(s.Offset), int(s.Size), prot)
			sys.Close(fd)
		}
	default:
		return nil
	}
	if err != nil {
		return fmt.Errorf("map control section: %w", err)
	}
	r.ctlIdx = ci
	r.ctlRW = opts.WritableControl
	return nil
}

// controlIndex is the index of the control section (ParseSections
// allows at most one), or -1.
func controlIndex(secs []Section) int {
	for i := range secs {
		if secs[i].Kind == abi.SecControl {
			return i
		}
	}
	return -1
}

// companion is the region's .ctl file as a reader found it.
type companion struct {
	fd     int // -1: not open
	st     sys.FileStat
	size   uint64 // 0: not usable (reason says why)
	reason string
}

// unusable closes c and keeps why.
func (c companion) unusable(reason string) companion {
	if c.fd >= 0 {
		sys.Close(c.fd)
	}
	return companion{fd: -1, reason: reason}
}

// openCompanion opens the .ctl file. A file that is absent, unreadable,
// empty, of another type or owned by someone else than the region's owner
// leaves the control section missing (reason says why): the region's
// producer-written data stays readable. Asked for writing, those are
// errors naming the file and the cause.
func openCompanion(path string, owner uint32, writable bool) (companion, error) {
	flag := sys.ORdonly
	if writable {
		flag = sys.ORdwr
	}
	c := companion{fd: -1}
	fd, st, err := openChecked(path, flag)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrPermission) && writable:
		return c, fmt.Errorf("open control file for writing: %w (ask the operator for write access to %s)", err, path)
	case writable:
		return c, fmt.Errorf("open control file: %w", err)
	default:
		c.reason = fmt.Sprintf("control file %s: %v", path, err)
		return c, nil
	}
	bad := func(format string, args ...any) (companion, error) {
		sys.Close(fd)
		c.reason = fmt.Sprintf("control file %s: "+format, append([]any{path}, args...)...)
		if writable {
			return c, fmt.Errorf("%s: %w", c.reason, ErrCorrupt)
		}
		return c, nil
	}
	switch {
	case st.Mode&sys.TypeMask != sys.TypeReg:
		return bad("is a %s, not a regular file", typeName(st.Mode))
	case st.UID != owner:
		return bad("owned by %s, the region by %s: refusing a control file someone else made", ownerName(st.UID), ownerName(owner))
	case st.Size <= 0:
		return bad("is empty (truncated?): the producer re-creates it")
	}
	c.fd, c.st, c.size = fd, st, uint64(st.Size)
	return c, nil
}

func hasExternal(mem []byte, h Header) bool {
	for i := uint32(0); i < h.SectionCount && i < abi.MaxSections; i++ {
		e := mem[abi.SectionTableOff+i*abi.SectionEntrySize:]
		if le.Uint32(e[abi.SectionFlagsOff:])&abi.SecFlagExternal != 0 {
			return true
		}
	}
	return false
}

func (r *Region) unmap() {
	if r.image {
		return
	}
	if r.mem != nil {
		_ = sys.Munmap(r.mem)
		r.mem = nil
	}
	if r.ctl != nil {
		_ = sys.Munmap(r.ctl)
		r.ctl = nil
	}
}

// retire replaces the mappings by zero pages and leaves their release to a
// cleanup of r (see Region).
func (r *Region) retire() {
	if r.image {
		return
	}
	var spans [][]byte
	for _, b := range [][]byte{r.mem, r.ctl} {
		if cap(b) == 0 {
			continue
		}
		if err := sys.Retire(b); err != nil {
			// Keep the file mapped rather than leave a hole under a view.
			retireFailed.Add(1)
		}
		spans = append(spans, b)
	}
	if len(spans) > 0 {
		runtime.AddCleanup(r, releaseSpans, spans)
	}
}

// retireFailed and released count, for the tests, the retirements that
// failed and the address ranges released by cleanups.
var retireFailed, released atomic.Int64

func releaseSpans(spans [][]byte) {
	for _, b := range spans {
		if sys.Munmap(b[:cap(b)]) == nil {
			released.Add(1)
		}
	}
}

func (r *Region) closeFds() {
	if r.keep == nil {
		return
	}
	for _, fd := range []int{r.keep.fd, r.keep.ctlFd} {
		if fd >= 0 {
			sys.Close(fd)
		}
	}
	r.keep = nil
}

// Close releases the region's files and mappings: the files are
// unmapped now (a module may unload, a shrinking file cannot fault a
// reader), their address ranges are kept as zero pages for the views that
// may still use them, and released once the Region and its views are
// unreachable. A second Close does nothing.
func (r *Region) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	unregister(r)
	r.retire()
	r.closeFds()
	if r.pctl != nil {
		r.pctl.file.Close()
		r.pctl = nil
	}
	if r.fd > 0 {
		sys.Close(r.fd)
		r.fd = 0
	}
	return nil
}

// Closed reports whether Close was called: views of a closed region read
// zeros (see Region).
func (r *Region) Closed() bool { return r.closed.Load() }

// Path is the path the region was opened or created at.
func (r *Region) Path() string { return r.path }

// Header returns the header as decoded at open, with the live fields
// (heartbeat, state, pid, generation) read again now.
func (r *Region) Header() Header {
	h := r.hdr
	h.HeartbeatNs = atomic.LoadUint64(r.u64(abi.HeaderHeartbeatOff))
	// The module republishes its period when a user changes the
	// sampling interval through control: the staleness limit follows it.
	h.HeartbeatPeriodNs = atomic.LoadUint64(r.u64(abi.HeaderPeriodOff))
	h.State = atomic.LoadUint32(r.u32(abi.HeaderStateOff))
	h.ProducerPID = atomic.LoadUint32(r.u32(abi.HeaderPIDOff))
	h.Generation = atomic.LoadUint64(r.u64(abi.HeaderGenerationOff))
	h.ControlRejected = atomic.LoadUint64(r.u64(abi.HeaderControlRejectedOff))
	h.ProducerPIDNS = atomic.LoadUint64(r.u64(abi.HeaderPIDNSOff))
	return h
}

// Sections returns the validated section table.
func (r *Region) Sections() []Section { return r.sections }

// Section finds a section by name.
func (r *Region) Section(name string) (*Section, error) {
	for i := range r.sections {
		if r.sections[i].Name == name {
			return &r.sections[i], nil
		}
	}
	return nil, fmt.Errorf("section %q: %w", name, ErrNoSection)
}

// Bytes returns the memory of a section: a slice of the mapping, valid
// while the Region is reachable (after Close it reads zeros). A read-only section's bytes must not be written (the
// mapping would fault); use Writable to know. s must be one of this
// region's sections (from Sections or Section).
func (r *Region) Bytes(s *Section) ([]byte, error) {
	if s.Index < 0 || s.Index >= len(r.sections) || !r.sections[s.Index].same(s) {
		return nil, fmt.Errorf("section %q is not a section of %s: %w", s.Name, r.path, ErrNoSection)
	}
	if r.ctl != nil && s.Index == r.ctlIdx {
		if uint64(len(r.ctl)) != s.Size {
			return nil, corrupt("section %q: %d bytes, control mapping %d", s.Name, s.Size, len(r.ctl))
		}
		return r.ctl[:s.Size:s.Size], nil
	}
	if s.External() {
		why := "which this process could not open"
		if s.MissingReason != "" {
			why = "(" + s.MissingReason + ")"
		}
		return nil, fmt.Errorf("section %q lives in %s.ctl, %s: %w", s.Name, r.path, why, ErrNoSection)
	}
	end, carry := bits.Add64(s.Offset, s.Size, 0)
	if carry != 0 || end > uint64(len(r.mem)) {
		return nil, fmt.Errorf("section %q: [%#x, +%#x) beyond the %d-byte mapping: %w", s.Name, s.Offset, s.Size, len(r.mem), ErrTruncated)
	}
	return r.mem[s.Offset:end:end], nil
}

// Writable reports whether s is mapped writable in this process.
func (r *Region) Writable(s *Section) bool {
	if r.ctl != nil && s.Index == r.ctlIdx {
		return r.ctlRW
	}
	return r.writable
}

// Staleness is the result of a producer liveness check.
type Staleness struct {
	Age    time.Duration // since the last heartbeat
	Limit  time.Duration // the most the reader tolerates
	State  uint32
	Stale  bool
	Reason string
}

// FutureSlack is how far in the future a heartbeat may lie (producer and
// reader read the same CLOCK_MONOTONIC) before the reader calls it a lie.
const FutureSlack = time.Second

// maxLimit caps the staleness limit a region may claim through its
// heartbeat period (a period near 2^64 ns would otherwise mean "never").
const maxLimit = time.Hour

// Liveness compares the heartbeat with CLOCK_MONOTONIC now, and checks
// that a daemon's or application's pid still exists (kill(pid, 0):
// ESRCH is dead; EPERM, another user's process, is alive). A heartbeat
// more than FutureSlack in the future is stale: no live producer wrote it.
// The pid is checked only when the producer recorded its pid namespace
// (ABI 1.6) and it is the reader's: elsewhere the pid names another
// process, or none, and the heartbeat is the test.
func (r *Region) Liveness() Staleness {
	return liveness(r.Header(), sys.MonotonicNs(), sys.ProcessState)
}

func liveness(h Header, now uint64, alive func(int) sys.PidState) Staleness {
	var age time.Duration
	future := h.HeartbeatNs > now && h.HeartbeatNs-now > uint64(FutureSlack)
	if now > h.HeartbeatNs {
		age = time.Duration(min(now-h.HeartbeatNs, uint64(1<<63-1)))
	}
	limit := time.Duration(min(h.HeartbeatPeriodNs, uint64(maxLimit)/3) * 3)
	limit = max(limit, time.Second)
	st := Staleness{Age: age, Limit: limit, State: h.State}
	switch {
	case h.State == abi.StateStopped:
		st.Stale, st.Reason = true, "the producer stopped"
	case h.State != abi.StateRunning:
		st.Stale, st.Reason = true, fmt.Sprintf("the producer is not running (state %d)", h.State)
	case future:
		st.Stale, st.Reason = true, fmt.Sprintf("the heartbeat is %v in the future: no running producer wrote it", time.Duration(min(h.HeartbeatNs-now, uint64(1<<63-1))).Round(time.Millisecond))
	case age > limit:
		st.Stale, st.Reason = true, fmt.Sprintf("no heartbeat for %v (limit %v): the producer died or stalled", age.Round(time.Millisecond), limit)
	case h.ProducerKind != abi.ProducerKernel && h.ProducerPIDNS != 0 && h.ProducerPIDNS == sys.PidNamespace() &&
		alive(int(h.ProducerPID)) == sys.PidDead:
		st.Stale, st.Reason = true, fmt.Sprintf("the producer's pid %d does not exist: it died", h.ProducerPID)
	}
	return st
}

// CheckProducer returns an error wrapping ErrStaleProducer when the
// producer is stale.
func (r *Region) CheckProducer() error {
	if st := r.Liveness(); st.Stale {
		return fmt.Errorf("%s: %w", st.Reason, ErrStaleProducer)
	}
	return nil
}

func (r *Region) u64(off uintptr) *uint64 { return (*uint64)(unsafe.Pointer(&r.mem[off])) }
func (r *Region) u32(off uintptr) *uint32 { return (*uint32)(unsafe.Pointer(&r.mem[off])) }

// FromBytes validates a copy of b as a region image and returns a
// read-only Region over the copy without mapping anything (saved images,
// fuzzing, tests). The copy is 8-byte aligned, as a mapping is, so b may
// come from anywhere. External sections are not available.
func FromBytes(b []byte) (*Region, error) {
	w := make([]uint64, (len(b)+7)/8)
	mem := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(w))), len(w)*8)[:len(b)]
	copy(mem, b)
	h, err := ParseHeader(mem, uint64(len(mem)))
	if err != nil {
		return nil, err
	}
	secs, err := ParseSections(mem, h, 0)
	if err != nil {
		return nil, err
	}
	return &Region{path: "(memory)", mem: mem[:h.RegionSize:h.RegionSize], hdr: h, sections: secs, image: true}, nil
}

// ProducerKindName names a producer kind.
func ProducerKindName(k uint32) string {
	switch k {
	case abi.ProducerKernel:
		return "kernel module"
	case abi.ProducerDaemon:
		return "userspace daemon"
	case abi.ProducerApp:
		return "application"
	}
	return fmt.Sprintf("kind %d", k)
}

// MaxText is the most bytes of a text section a reader reads: a region
// may claim a text section of any size (a sparse file costs its writer
// nothing), and readers must not turn that claim into memory.
const MaxText = 64 << 10

// Text returns the text of section s (kind text): its bytes up to the
// first NUL, at most max bytes (MaxText when max ≤ 0); truncated reports
// that the text went on beyond max. The text is as the producer wrote
// it: sanitise it before printing (internal/sanitize).
func (r *Region) Text(s *Section, max int) (text string, truncated bool, err error) {
	if s.Kind != abi.SecText {
		return "", false, fmt.Errorf("section %q is %s, not text: %w", s.Name, KindName(s.Kind), ErrCorrupt)
	}
	if max <= 0 {
		max = MaxText
	}
	b, err := r.Bytes(s)
	if err != nil {
		return "", false, err
	}
	if len(b) > max {
		b, truncated = b[:max], true
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b, truncated = b[:i], false
	}
	return string(b), truncated, nil
}
