package bpfrt

import (
	"fmt"
	"reflect"
	"sync/atomic"
	"unsafe"

	"github.com/kushm/kushm/ring"
)

// Ring is a region's trace ring (package ring): tracepoints write to it,
// readers go through userside/client.
type Ring = ring.Ring

// ErrNoRing: the region has no usable trace ring.
var ErrNoRing = ring.ErrNoRing

// OpenRing returns the trace ring of region r (ring.Open).
var OpenRing = ring.Open

// TraceRingSpec is the section spec of a trace ring (ring.Spec).
var TraceRingSpec = ring.Spec

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
	tp.ring.Write(tp.ID, monoNs(), uint32(currentCPUCheap()), ctx)
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
