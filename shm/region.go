package shm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
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
// A Region and every view obtained from it (Section bytes, atomicarr and
// rcuhash tables) are valid until Close; using a view after Close faults.
// A Region is safe for concurrent use by multiple goroutines.
type Region struct {
	path     string
	mem      []byte // whole region (read-only or read-write)
	ctl      []byte // companion file or control pages mapped separately, may be nil
	writable bool
	ctlRW    bool
	hdr      Header
	sections []Section
	closed   atomic.Bool
	image    bool // FromBytes: memory not ours to unmap
	fd       int  // memfd regions: the descriptor (0: none)
}

// Options for Open.
type Options struct {
	// WritableControl maps the user-writable control section read-write
	// (needs write permission on /dev/kushm or on the .ctl file).
	WritableControl bool
	// AllowStale opens a region whose producer is stale instead of
	// failing with ErrStaleProducer (the data is still readable).
	AllowStale bool
}

// Open maps the region at path read-only (the control section read-write
// with opts.WritableControl) and validates it. path may be a regular file
// (the daemon's /dev/shm/kushm), the debugfs file or the /dev/kushm
// device. A region whose producer is stale is refused with
// ErrStaleProducer unless opts.AllowStale.
func Open(path string, opts Options) (*Region, error) {
	r, err := open(path, opts)
	if err != nil {
		return nil, fmt.Errorf("open region %s: %w", path, err)
	}
	return r, nil
}

func open(path string, opts Options) (*Region, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w (no producer: start 'kushm serve' or load the module with 'kushm load')", ErrNoRegion)
		}
		return nil, err
	}
	defer f.Close()
	// Character devices and debugfs report size 0: read the header first.
	hdrBuf := make([]byte, abi.HeaderSize)
	n, err := sys.Pread(int(f.Fd()), hdrBuf, 0)
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	h, err := ParseHeader(hdrBuf[:n], ^uint64(0))
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && uint64(st.Size()) < h.RegionSize {
		return nil, fmt.Errorf("file has %d bytes, header says %d: %w", st.Size(), h.RegionSize, ErrTruncated)
	}
	if h.RegionSize > 1<<40 {
		return nil, corrupt("region_size %d", h.RegionSize)
	}
	mem, err := sys.Mmap(int(f.Fd()), 0, int(h.RegionSize), sys.ProtRead)
	if err != nil {
		return nil, fmt.Errorf("mmap %d bytes: %w", h.RegionSize, err)
	}
	r := &Region{path: path, mem: mem}
	ok := false
	defer func() {
		if !ok {
			r.unmap()
		}
	}()
	// Re-parse from the mapping: the header bytes we validated and the
	// ones we use must be the same bytes.
	h, err = ParseHeader(mem, uint64(len(mem)))
	if err != nil {
		return nil, err
	}
	r.hdr = h
	var ctlFile *os.File
	var ctlSize uint64
	if hasExternal(mem, h) {
		flag := os.O_RDONLY
		if opts.WritableControl {
			flag = os.O_RDWR
		}
		ctlFile, err = os.OpenFile(path+".ctl", flag, 0)
		if err != nil {
			if errors.Is(err, fs.ErrPermission) && opts.WritableControl {
				return nil, fmt.Errorf("open control file for writing: %w (ask the operator for write access to %s.ctl)", err, path)
			}
			// Without the companion file the region is still
			// readable; the control section is marked missing.
		} else {
			defer ctlFile.Close()
			if st, err := ctlFile.Stat(); err == nil {
				ctlSize = uint64(st.Size())
			}
		}
	}
	secs, err := ParseSections(mem, h, ctlSize)
	if err != nil {
		return nil, err
	}
	r.sections = secs
	// Map the control section.
	for i := range secs {
		s := &secs[i]
		if s.Kind != abi.SecControl {
			continue
		}
		prot := sys.ProtRead
		if opts.WritableControl {
			prot |= sys.ProtWrite
		}
		switch {
		case s.External() && ctlFile != nil:
			r.ctl, err = sys.Mmap(int(ctlFile.Fd()), int64(s.Offset), int(s.Size), prot)
		case !s.External() && opts.WritableControl:
			// Same file or device, mapped again read-write at the
			// section's offset (the module allows only these pages).
			var rw *os.File
			rw, err = os.OpenFile(path, os.O_RDWR, 0)
			if err == nil {
				r.ctl, err = sys.Mmap(int(rw.Fd()), int64(s.Offset), int(s.Size), prot)
				rw.Close()
			}
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("map control section: %w", err)
		}
		r.ctlRW = opts.WritableControl
	}
	if !opts.AllowStale {
		if err := r.CheckProducer(); err != nil {
			return nil, err
		}
	}
	ok = true
	return r, nil
}

func hasExternal(mem []byte, h Header) bool {
	for i := uint32(0); i < h.SectionCount && i < abi.MaxSections; i++ {
		e := mem[abi.SectionTableOff+i*abi.SectionEntrySize:]
		if le.Uint32(e[20:])&abi.SecFlagExternal != 0 {
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

// Close unmaps the region. Views obtained from it must not be used after.
func (r *Region) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	r.unmap()
	if r.fd > 0 {
		sys.Close(r.fd)
		r.fd = 0
	}
	return nil
}

// Path is the path the region was opened or created at.
func (r *Region) Path() string { return r.path }

// Header returns the header as decoded at open, with the live fields
// (heartbeat, state, pid, generation) read again now.
func (r *Region) Header() Header {
	h := r.hdr
	h.HeartbeatNs = atomic.LoadUint64(r.u64(48))
	h.State = atomic.LoadUint32(r.u32(64))
	h.ProducerPID = atomic.LoadUint32(r.u32(36))
	h.Generation = atomic.LoadUint64(r.u64(88))
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
// until Close. A read-only section's bytes must not be written (the
// mapping would fault); use Writable to know.
func (r *Region) Bytes(s *Section) ([]byte, error) {
	if s.Kind == abi.SecControl {
		if r.ctl != nil {
			return r.ctl[:s.Size:s.Size], nil
		}
		if s.External() {
			return nil, fmt.Errorf("section %q: control file not mapped: %w", s.Name, ErrNoSection)
		}
	}
	if s.External() {
		return nil, fmt.Errorf("section %q lives in %s.ctl, which this process could not open: %w", s.Name, r.path, ErrNoSection)
	}
	return r.mem[s.Offset : s.Offset+s.Size : s.Offset+s.Size], nil
}

// Writable reports whether s is mapped writable in this process.
func (r *Region) Writable(s *Section) bool {
	if s.Kind == abi.SecControl && r.ctl != nil {
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

// Liveness compares the heartbeat with CLOCK_MONOTONIC now.
func (r *Region) Liveness() Staleness {
	h := r.Header()
	now := sys.MonotonicNs()
	var age time.Duration
	if now > h.HeartbeatNs {
		age = time.Duration(now - h.HeartbeatNs)
	}
	limit := time.Duration(h.HeartbeatPeriodNs) * 3
	if limit < time.Second {
		limit = time.Second
	}
	st := Staleness{Age: age, Limit: limit, State: h.State}
	switch {
	case h.State == abi.StateStopped:
		st.Stale, st.Reason = true, "the producer stopped"
	case h.State != abi.StateRunning:
		st.Stale, st.Reason = true, fmt.Sprintf("the producer is not running (state %d)", h.State)
	case age > limit:
		st.Stale, st.Reason = true, fmt.Sprintf("no heartbeat for %v (limit %v): the producer died or stalled", age.Round(time.Millisecond), limit)
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
