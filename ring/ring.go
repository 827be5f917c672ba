package ring

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/shm"
)

// ErrNoRing: the region has no usable trace ring.
var ErrNoRing = errors.New("no trace ring")

// Spec is the section spec of a trace ring of records records, each
// holding up to payload bytes, for shm.Create.
func Spec(records, payload int) shm.SectionSpec {
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
	region *shm.Region // keeps the mapping alive while the view is (see shm.Region)
	mem    []byte
	base   unsafe.Pointer
	elem   uint64
	count  uint64
	pid    uint32
}

// Open returns the trace ring of region r.
func Open(r *shm.Region) (*Ring, error) {
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
	g, err := newRing(b, uint64(s.ElemSize), uint64(s.Count))
	if err != nil {
		return nil, err
	}
	g.region = r
	return g, nil
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
func (g *Ring) Head() uint64 { return atomic.LoadUint64(g.u64(uint64(abi.RingHeadOff))) }

// Lost is the number of records writers dropped.
func (g *Ring) Lost() uint64 { return atomic.LoadUint64(g.u64(uint64(abi.RingLostOff))) }

// Write appends one record taken at tsNs (CLOCK_MONOTONIC) on cpu; a
// payload larger than MaxPayload is dropped and counted in Lost. The
// ring's memory must be mapped writable.
func (g *Ring) Write(typ uint32, tsNs uint64, cpu uint32, payload []byte) {
	defer runtime.KeepAlive(g) // the mapping stays until g is unreachable
	if len(payload) > g.MaxPayload() {
		atomic.AddUint64(g.u64(uint64(abi.RingLostOff)), 1)
		return
	}
	n := atomic.AddUint64(g.u64(uint64(abi.RingHeadOff)), 1) - 1
	off := abi.RingHeaderSize + (n%g.count)*g.elem
	seq := g.u64(off)
	// The odd sequence is a swap (a full barrier on every architecture):
	// the record's stores below cannot be seen before it. They are plain
	// stores: readers copy the record and accept it only when the
	// sequence read before and after is the same even value, so a torn
	// copy is never used; the even store (a release) publishes them.
	atomic.SwapUint64(seq, 2*n+1)
	*g.u64(off + uint64(abi.RecordLenOff)) = uint64(len(payload)) | uint64(typ)<<32
	*g.u64(off + uint64(abi.RecordTsOff)) = tsNs
	*g.u64(off + uint64(abi.RecordCPUOff)) = uint64(cpu) | uint64(g.pid)<<32
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
	defer runtime.KeepAlive(g)
	off := abi.RingHeaderSize + (n%g.count)*g.elem
	seq := g.u64(off)
	if atomic.LoadUint64(seq) != 2*n+2 {
		return Record{}, false
	}
	lt := atomic.LoadUint64(g.u64(off + uint64(abi.RecordLenOff)))
	ts := atomic.LoadUint64(g.u64(off + uint64(abi.RecordTsOff)))
	cp := atomic.LoadUint64(g.u64(off + uint64(abi.RecordCPUOff)))
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
