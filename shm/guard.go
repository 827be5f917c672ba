package shm

import (
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/kushm/kushm/internal/sys"
)

// A region file is shared with other users: its owner (or, for the .ctl
// file, any member of its group) may truncate it while this process maps
// it, and a load from a page beyond the new end of file raises SIGBUS.
// Guard turns that fault into an error for the goroutine that ran into it;
// Check notices the change without touching the memory. Long-lived
// readers run each pass of their loop under Guard and call Check between
// passes (contract 5 of doc.go).

// mapping is one range of memory a Region mapped from a file.
type mapping struct {
	start, end uintptr
	r          *Region // nil once closed
	path       string
	ctl        bool
	volatile   bool // may shrink under the mapping (not a sealed memfd)
}

// span is one volatile mapping, as Volatile reads it.
type span struct{ start, end uintptr }

// volatileSpans is an immutable snapshot of the volatile mappings (nil
// or empty: none), replaced under mappings' lock, read without it.
var volatileSpans atomic.Pointer[[]span]

// volatileAny: volatileSpans is not empty (stored after it).
var volatileAny atomic.Bool

// publish replaces the snapshot Volatile reads; mappings is locked.
func publish() {
	var s []span
	for _, m := range mappings.m {
		if m.volatile {
			s = append(s, span{m.start, m.end})
		}
	}
	volatileSpans.Store(&s)
	volatileAny.Store(len(s) != 0)
}

// AnyVolatile reports whether any volatile mapping (see Volatile) exists:
// when it is false, Volatile is false for every b. One atomic load of a
// flag, for a hot path that tests it first and calls Volatile only when
// it is true (a mapping made before the caller obtained b is seen).
func AnyVolatile() bool { return volatileAny.Load() }

// Volatile reports whether b overlaps memory mapped from a region file
// that can shrink under the mapping (a region or control file another
// user may truncate; anything but a size-sealed memfd this process
// created), so that a load from it may fault (SIGBUS). Code that cannot
// recover from a fault (the bpfrt JIT's generated code) must not touch
// such memory; Go code may, under Guard. It costs one atomic load when
// no region is mapped.
func Volatile(b []byte) bool {
	s := volatileSpans.Load()
	if s == nil || len(*s) == 0 || len(b) == 0 {
		return false
	}
	return overlaps(*s, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
}

func overlaps(s []span, p, n uintptr) bool {
	for _, m := range s {
		if p < m.end && m.start < p+n {
			return true
		}
	}
	return false
}

// FaultError explains p, a value recovered from a panic, when it is a
// memory fault inside a mapped region (as Guard does): an error wrapping
// ErrChanged naming the file and the offset. Code that recovers panics
// itself (an interpreter turning them into run errors) uses it to give
// Guard's error rather than swallow the fault.
func FaultError(p any) (error, bool) { return faultError(p) }

var mappings struct {
	sync.Mutex
	m []mapping
	// closed are the last mappings unregistered: a deferred Close runs
	// while a fault's panic unwinds, before Guard's recover looks up the
	// address.
	closed [16]mapping
	next   int
}

func register(r *Region) {
	if r.image {
		return
	}
	unregister(r)
	mappings.Lock()
	defer mappings.Unlock()
	for _, b := range [][]byte{r.mem, r.ctl} {
		if len(b) == 0 {
			continue
		}
		p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
		mappings.m = append(mappings.m, mapping{start: p, end: p + uintptr(len(b)), r: r, path: r.path, ctl: len(r.ctl) > 0 && &b[0] == &r.ctl[0], volatile: r.fd == 0})
	}
	publish()
}

func unregister(r *Region) {
	mappings.Lock()
	defer mappings.Unlock()
	out := mappings.m[:0]
	for _, m := range mappings.m {
		if m.r != r {
			out = append(out, m)
			continue
		}
		m.r = nil // the path is enough; the Region may go (its cleanup unmaps)
		mappings.closed[mappings.next%len(mappings.closed)] = m
		mappings.next++
	}
	clear(mappings.m[len(out):])
	mappings.m = out
	publish()
}

func lookup(addr uintptr) (mapping, bool) {
	mappings.Lock()
	defer mappings.Unlock()
	for _, m := range mappings.m {
		if addr >= m.start && addr < m.end {
			return m, true
		}
	}
	for _, m := range mappings.closed {
		if m.path != "" && addr >= m.start && addr < m.end {
			return m, true
		}
	}
	return mapping{}, false
}

// Guard runs f and turns a memory fault in a mapped region (its file
// shrank under the mapping) into an error wrapping ErrChanged that names
// the file; any other panic continues. It costs two runtime calls and a
// deferred recover: guard a loop or a pass, not each load.
//
// Only the calling goroutine is guarded (runtime/debug.SetPanicOnFault);
// after a fault, the region must not be read again: Close it (or reopen).
func Guard(f func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if p := recover(); p != nil {
			ferr, ok := faultError(p)
			if !ok {
				panic(p)
			}
			err = ferr
		}
	}()
	return f()
}

// Guard is Guard for one region.
func (r *Region) Guard(f func() error) error { return Guard(f) }

// faultError explains a recovered panic p when it is a fault inside a
// registered mapping.
func faultError(p any) (error, bool) {
	re, ok := p.(runtime.Error)
	if !ok {
		return nil, false
	}
	a, ok := re.(interface{ Addr() uintptr })
	if !ok {
		return nil, false
	}
	m, ok := lookup(a.Addr())
	if !ok {
		return nil, false
	}
	file := m.path
	if m.ctl {
		file += ".ctl"
	}
	why := ""
	if m.r != nil { // else closed while the panic unwound: nothing left to check
		if err := m.r.Check(); err != nil {
			why = ": " + strings.TrimSuffix(err.Error(), ": "+ErrChanged.Error())
		}
	}
	return fmt.Errorf("read %s at offset %d%s: %w", file, a.Addr()-m.start, why, ErrChanged), true
}

// Check reports, without touching the mapped memory, whether the region
// file or its control file shrank below what is mapped, or whether the
// path now names another file (the producer restarted, or someone
// replaced it): an error wrapping ErrChanged. Producers and images always
// pass. It costs a few system calls (fstat, lstat).
func (r *Region) Check() error {
	k := r.keep
	if k == nil || r.closed.Load() {
		return nil
	}
	if err := checkFile(r.path, k.fd, k.id); err != nil {
		return err
	}
	if k.ctlFd >= 0 {
		return checkFile(r.path+".ctl", k.ctlFd, k.ctlID)
	}
	return nil
}

func checkFile(path string, fd int, id fileID) error {
	st, err := sys.Fstat(fd)
	if err != nil {
		return fmt.Errorf("fstat %s: %v: %w", path, err, ErrChanged)
	}
	if id.regular && uint64(st.Size) < id.size {
		return fmt.Errorf("%s shrank to %d bytes, %d mapped: %w", path, st.Size, id.size, ErrChanged)
	}
	if followable(path) {
		return nil
	}
	cur, err := sys.Lstat(path)
	switch {
	case err != nil:
		return fmt.Errorf("%s: %v (removed: the producer stopped for good, or someone deleted it): %w", path, err, ErrChanged)
	case cur.Dev != st.Dev || cur.Ino != st.Ino:
		return fmt.Errorf("%s was replaced by another file (a producer restarted? reopen): %w", filepath.Clean(path), ErrChanged)
	}
	return nil
}
