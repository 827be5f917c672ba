package bpfrt

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sync/atomic"
	"unsafe"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/shm"
)

// ErrNoRing: the region has no usable trace ring.
var ErrNoRing = errors.New("no trace ring")

// TraceRingSpec is the section spec of a trace ring of records records,
// each holding up to payload bytes, for shm.Create.
func TraceRingSpec(records, payload int) shm.SectionSpec {
	elem := (abi.RecordHeadSize + payload + 7) &^ 7
	return shm.SectionSpec{
		Name: abi.SecNameTrace, Kind: abi.SecRing, Flags: abi.SecFlagProducer,
		Size:     uint64(abi.RingHeaderSize + elem*records),
		ElemSize: uint32(elem), Count: uint32(records),
	}
}

// Ring is an overwrite ring of fixed-size records in a region section
// (docs/region-format.md): writers reserve record n with one atomic add
// on the header's head, mark it odd (2n+1), fill it and mark it complete
// (2n+2); readers copy a record and keep it only if its seq was 2n+2
// before and after the copy. Any number of writers and readers.
type Ring struct {
	mem   []byte
	base  unsafe.Pointer
	elem  uint64
	count uint64
	pid   uint32
}

// OpenRing returns the trace ring of region r.
func OpenRing(r *shm.Region) (*Ring, error) {
	s, err := r.Section(abi.SecNameTrace)
	if err != nil {
		return nil, fmt.Errorf("open trace ring: %w: %w", ErrNoRing, err)
	}
	if s.Kind != abi.SecRing {
		return nil, fmt.Errorf("open trace ring: section kind %d: %w", s.Kind, ErrNoRing)
	}
	b, err := r.Bytes(s)
	if err != nil {
		return nil, fmt.Errorf("open trace ring: %w", err)
	}
	return newRing(b, uint64(s.ElemSize), uint64(s.Count))
}

func newRing(b []byte, elem, count uint64) (*Ring, error) {
	if elem < abi.RecordHeadSize || elem%8 != 0 || count == 0 || elem > abi.MaxRingRecordSize ||
		abi.RingHeaderSize+elem*count > uint64(len(b)) || uintptr(unsafe.Pointer(&b[0]))%8 != 0 {
		return nil, fmt.Errorf("open trace ring: geometry %d x %d in %d bytes: %w", count, elem, len(b), ErrNoRing)
	}
	return &Ring{mem: b, base: unsafe.Pointer(&b[0]), elem: elem, count: count, pid: uint32(os.Getpid())}, nil
}

func (g *Ring) u64(off uint64) *uint64 { return (*uint64)(unsafe.Add(g.base, off)) }

// MaxPayload is the largest payload of one record.
func (g *Ring) MaxPayload() int { return int(g.elem - abi.RecordHeadSize) }

// Head is the number of records ever reserved.
func (g *Ring) Head() uint64 { return atomic.LoadUint64(g.u64(0)) }

// Lost is the number of records writers dropped.
func (g *Ring) Lost() uint64 { return atomic.LoadUint64(g.u64(8)) }

// Write appends one record; a payload larger than MaxPayload is dropped
// and counted in Lost. The ring's memory must be mapped writable.
func (g *Ring) Write(typ uint32, payload []byte) {
	if len(payload) > g.MaxPayload() {
		atomic.AddUint64(g.u64(8), 1)
		return
	}
	n := atomic.AddUint64(g.u64(0), 1) - 1
	off := abi.RingHeaderSize + (n%g.count)*g.elem
	seq := g.u64(off)
	// The odd sequence is a swap (a full barrier on every architecture):
	// the record's stores below cannot be seen before it. They are plain
	// stores: readers copy the record and accept it only when the
	// sequence read before and after is the same even value, so a torn
	// copy is never used; the even store (a release) publishes them.
	atomic.SwapUint64(seq, 2*n+1)
	*g.u64(off + 8) = uint64(len(payload)) | uint64(typ)<<32
	*g.u64(off + 16) = monoNs()
	*g.u64(off + 24) = uint64(uint32(currentCPUCheap())) | uint64(g.pid)<<32
	copy(unsafe.Slice((*byte)(unsafe.Add(g.base, off+abi.RecordHeadSize)), len(payload)), payload)
	atomic.StoreUint64(seq, 2*n+2)
}

// Record is one record read back.
type Record struct {
	Seq     uint64 // n: the record's number
	Type    uint32 // tracepoint id
	TimeNs  uint64 // CLOCK_MONOTONIC
	CPU     uint32
	PID     uint32
	Payload []byte
}

// Read returns record n, or ok false when it was overwritten, is being
// written or was never written.
func (g *Ring) Read(n uint64) (Record, bool) {
	off := abi.RingHeaderSize + (n%g.count)*g.elem
	seq := g.u64(off)
	if atomic.LoadUint64(seq) != 2*n+2 {
		return Record{}, false
	}
	lt := atomic.LoadUint64(g.u64(off + 8))
	ts := atomic.LoadUint64(g.u64(off + 16))
	cp := atomic.LoadUint64(g.u64(off + 24))
	l := uint64(uint32(lt))
	if l > g.elem-abi.RecordHeadSize {
		return Record{}, false
	}
	p := make([]byte, l)
	for i := uint64(0); i < (l+7)/8; i++ {
		w := atomic.LoadUint64(g.u64(off + abi.RecordHeadSize + 8*i))
		for j := uint64(0); j < 8 && 8*i+j < l; j++ {
			p[8*i+j] = byte(w >> (8 * j))
		}
	}
	if atomic.LoadUint64(seq) != 2*n+2 {
		return Record{}, false
	}
	return Record{Seq: n, Type: uint32(lt >> 32), TimeNs: ts, CPU: uint32(cp), PID: uint32(cp >> 32), Payload: p}, true
}

// Tracepoint is a user tracepoint: an application fires it with a context
// (the event's bytes); a BPF filter program attached to it decides whether
// the event goes to the ring, like an LTTng-UST filter. With no filter
// attached every event is recorded; Disable stops recording altogether.
type Tracepoint struct {
	Name     string
	ID       uint32
	ring     *Ring
	prog     atomic.Pointer[Program]
	disabled atomic.Bool
	errors   atomic.Uint64
}

// NewTracepoint declares a tracepoint writing to ring with record type id.
func NewTracepoint(name string, id uint32, ring *Ring) *Tracepoint {
	return &Tracepoint{Name: name, ID: id, ring: ring}
}

// Attach installs p as the filter (nil: none). Safe while Fire runs.
func (tp *Tracepoint) Attach(p *Program) { tp.prog.Store(p) }

// Enable and Disable switch recording; Enabled is one atomic load, for
// applications that skip building the context when nobody listens.
func (tp *Tracepoint) Enable()       { tp.disabled.Store(false) }
func (tp *Tracepoint) Disable()      { tp.disabled.Store(true) }
func (tp *Tracepoint) Enabled() bool { return !tp.disabled.Load() }

// Errors counts filter runs that failed (the event was dropped).
func (tp *Tracepoint) Errors() uint64 { return tp.errors.Load() }

// Fire runs the filter on ctx and records ctx if it returns non-zero. It
// reports whether the event was recorded. Safe for concurrent use.
func (tp *Tracepoint) Fire(ctx []byte) bool {
	if tp.disabled.Load() {
		return false
	}
	if p := tp.prog.Load(); p != nil {
		r, err := p.Run(ctx)
		if err != nil {
			tp.errors.Add(1)
			return false
		}
		if r == 0 {
			return false
		}
	}
	tp.ring.Write(tp.ID, ctx)
	return true
}

// TypedTracepoint is a Tracepoint whose context is the Go struct T, which
// must hold no pointers (its bytes are the BPF program's context, laid out
// as the C struct with the same fields).
type TypedTracepoint[T any] struct{ *Tracepoint }

// NewTypedTracepoint declares a tracepoint with context struct T.
func NewTypedTracepoint[T any](name string, id uint32, ring *Ring) (*TypedTracepoint[T], error) {
	var z T
	if hasPointers(reflect.TypeOf(z)) {
		return nil, fmt.Errorf("tracepoint %s: context %T holds pointers: %w", name, z, ErrNotSupported)
	}
	return &TypedTracepoint[T]{NewTracepoint(name, id, ring)}, nil
}

// Fire fires the tracepoint with ev as context.
func (tp *TypedTracepoint[T]) Fire(ev *T) bool {
	return tp.Tracepoint.Fire(unsafe.Slice((*byte)(unsafe.Pointer(ev)), unsafe.Sizeof(*ev)))
}

func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return false
	case reflect.Array:
		return hasPointers(t.Elem())
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	}
	return true
}
