package rcuhash

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/shm"
)

// ErrShortBuffer: the destination is smaller than the table's value.
var ErrShortBuffer = errors.New("buffer shorter than the value")

// Geometry of a table, for Spec.
type Geometry struct {
	Capacity  int // nodes (entries), rounded up to a power of two; at most abi.MaxHashCapacity
	NSlots    int // value slots per node: 1, or one per CPU; 0 means 1
	ValueSize int // bytes per slot value, multiple of 8
	DataSize  int // bytes of immutable node data, multiple of 8
}

type layout struct {
	nbuckets, capacity, nodeSize, nslots, valueSize uint32
	slotsOff, slotStride, dataOff, dataSize         uint32
	bucketsOff, nodesOff                            uint32
	size                                            uint64
}

func align(v, a uint64) uint64 { return (v + a - 1) / a * a }

func plan(g Geometry) (layout, error) {
	var l layout
	if g.NSlots == 0 {
		g.NSlots = 1
	}
	if g.Capacity <= 0 || g.Capacity > abi.MaxHashCapacity {
		return l, fmt.Errorf("capacity %d out of range", g.Capacity)
	}
	nb := 1
	for nb < g.Capacity {
		nb <<= 1
	}
	switch {
	case g.NSlots < 1 || g.NSlots > abi.MaxCPUs:
		return l, fmt.Errorf("nslots %d out of range", g.NSlots)
	case g.ValueSize <= 0 || g.ValueSize%8 != 0 || g.ValueSize > abi.MaxValueSize:
		return l, fmt.Errorf("value size %d not a positive multiple of 8 ≤ %d", g.ValueSize, abi.MaxValueSize)
	case g.DataSize < 0 || g.DataSize%8 != 0 || g.DataSize > abi.MaxValueSize:
		return l, fmt.Errorf("data size %d not a multiple of 8", g.DataSize)
	}
	l.nbuckets, l.capacity, l.nslots = uint32(nb), uint32(nb), uint32(g.NSlots)
	l.valueSize, l.dataSize, l.dataOff = uint32(g.ValueSize), uint32(g.DataSize), abi.RCUNodeSize
	l.slotStride = uint32(abi.SlotHeadSize + g.ValueSize)
	l.slotsOff = uint32(abi.RCUNodeSize + g.DataSize)
	if g.NSlots > 1 {
		// Per-CPU writers: each slot on its own cache lines.
		l.slotStride = uint32(align(uint64(l.slotStride), abi.CacheLine))
		l.slotsOff = uint32(align(uint64(l.slotsOff), abi.CacheLine))
	}
	l.nodeSize = uint32(align(uint64(l.slotsOff)+uint64(l.nslots)*uint64(l.slotStride), abi.CacheLine))
	l.nodesOff = abi.HashHeaderSize
	l.size = uint64(l.nodesOff) + uint64(l.capacity)*uint64(l.nodeSize)
	return l, nil
}

// Spec describes an rcuhash section for shm.Create. Columns of kind
// abi.ColKey and abi.ColLabel describe the key and node data; the others
// describe the value.
func Spec(name string, g Geometry, cols []shm.ColumnSpec) (shm.SectionSpec, error) {
	l, err := plan(g)
	if err != nil {
		return shm.SectionSpec{}, fmt.Errorf("rcuhash %q: %w", name, err)
	}
	return shm.SectionSpec{
		Name: name, Kind: abi.SecRCUHash, Flags: abi.SecFlagProducer,
		Size: l.size, ElemSize: l.nodeSize, Count: l.capacity, Columns: cols,
		Init: func(b []byte) error { initTable(b, l); return nil },
	}, nil
}

func initTable(b []byte, l layout) {
	le := binary.LittleEndian
	h := abi.HashHeader{
		Magic: abi.HashMagic, NBuckets: l.nbuckets, Capacity: l.capacity, NodeSize: l.nodeSize,
		NSlots: l.nslots, ValueSize: l.valueSize, SlotsOff: l.slotsOff, SlotStride: l.slotStride,
		DataOff: l.dataOff, DataSize: l.dataSize, BucketsOff: l.bucketsOff, NodesOff: l.nodesOff,
	}
	if err := abi.Encode(b, &h); err != nil {
		panic(err) // Spec sized the section from the plan
	}
	// Every node free (odd seq); every bucket empty.
	for i := uint32(0); i < l.capacity; i++ {
		le.PutUint32(b[uint64(l.nodesOff)+uint64(i)*uint64(l.nodeSize):], 1)
	}
}

// Table is a view of an rcuhash section.
type Table struct {
	name     string
	region   *shm.Region // keeps the mapping alive while the view is (see shm.Region)
	mem      []byte
	base     unsafe.Pointer
	nodes    unsafe.Pointer
	l        layout
	mask     uint32
	writable bool
	cols     []shm.Column
	w        *writer // non-nil for the structure writer
}

// Open returns a reader's view of the rcuhash section name of r,
// validating every geometry field against the section's bounds.
func Open(r *shm.Region, name string) (*Table, error) {
	s, err := r.Section(name)
	if err != nil {
		return nil, fmt.Errorf("open rcuhash: %w", err)
	}
	if s.Kind != abi.SecRCUHash {
		return nil, fmt.Errorf("open rcuhash %q: kind %s: %w", name, shm.KindName(s.Kind), shm.ErrCorrupt)
	}
	b, err := r.Bytes(s)
	if err != nil {
		return nil, fmt.Errorf("open rcuhash %q: %w", name, err)
	}
	t, err := View(name, b)
	if err != nil {
		return nil, fmt.Errorf("open rcuhash %q: %w", name, err)
	}
	t.region = r
	t.writable = r.Writable(s)
	t.cols = s.Columns
	return t, nil
}

// View validates b as an rcuhash section and returns a read-only view.
// It is what Open uses, exposed for fuzzing and for memory that did not
// come from a Region.
func View(name string, b []byte) (*Table, error) {
	if len(b) < abi.HashHeaderSize {
		return nil, fmt.Errorf("%d bytes < table header: %w", len(b), shm.ErrTruncated)
	}
	if uintptr(unsafe.Pointer(unsafe.SliceData(b)))%8 != 0 {
		return nil, fmt.Errorf("table memory not 8-byte aligned: %w", shm.ErrCorrupt)
	}
	var h abi.HashHeader
	if err := abi.Decode(b, &h); err != nil {
		return nil, fmt.Errorf("table header: %v: %w", err, shm.ErrCorrupt)
	}
	if h.Magic != abi.HashMagic {
		return nil, fmt.Errorf("table magic %#x: %w", h.Magic, shm.ErrCorrupt)
	}
	l := layout{nbuckets: h.NBuckets, capacity: h.Capacity, nodeSize: h.NodeSize, nslots: h.NSlots, valueSize: h.ValueSize,
		slotsOff: h.SlotsOff, slotStride: h.SlotStride, dataOff: h.DataOff, dataSize: h.DataSize, bucketsOff: h.BucketsOff, nodesOff: h.NodesOff}
	bad := func(what string, v uint32) error {
		return fmt.Errorf("table %s = %d: %w", what, v, shm.ErrCorrupt)
	}
	size := uint64(len(b))
	switch {
	case l.nbuckets == 0 || l.nbuckets > abi.MaxHashCapacity || bits.OnesCount32(l.nbuckets) != 1:
		return nil, bad("nbuckets", l.nbuckets)
	case l.capacity != l.nbuckets:
		return nil, bad("capacity (must equal nbuckets)", l.capacity)
	case l.nslots == 0 || l.nslots > abi.MaxCPUs:
		return nil, bad("nslots", l.nslots)
	case l.valueSize == 0 || l.valueSize%8 != 0 || l.valueSize > abi.MaxValueSize:
		return nil, bad("value_size", l.valueSize)
	case l.dataOff != abi.RCUNodeSize:
		return nil, bad("data_off", l.dataOff)
	case l.dataSize%8 != 0 || l.dataSize > abi.MaxValueSize:
		return nil, bad("data_size", l.dataSize)
	case l.slotsOff%8 != 0 || uint64(l.slotsOff) < uint64(l.dataOff)+uint64(l.dataSize):
		return nil, bad("slots_off", l.slotsOff)
	case l.slotStride%8 != 0 || uint64(l.slotStride) < abi.SlotHeadSize+uint64(l.valueSize):
		return nil, bad("slot_stride", l.slotStride)
	case l.nodeSize%8 != 0 || uint64(l.nodeSize) < uint64(l.slotsOff)+uint64(l.nslots)*uint64(l.slotStride):
		return nil, bad("node_size", l.nodeSize)
	case l.bucketsOff != 0:
		return nil, bad("buckets_off", l.bucketsOff)
	case l.nodesOff%8 != 0 || l.nodesOff < abi.HashHeaderSize:
		return nil, bad("nodes_off", l.nodesOff)
	case uint64(l.nodesOff)+uint64(l.capacity)*uint64(l.nodeSize) > size:
		return nil, fmt.Errorf("%d nodes of %d bytes at %d exceed %d: %w", l.capacity, l.nodeSize, l.nodesOff, size, shm.ErrCorrupt)
	}
	base := unsafe.Pointer(unsafe.SliceData(b))
	return &Table{name: name, mem: b, base: base, l: l, mask: l.nbuckets - 1,
		nodes: unsafe.Add(base, l.nodesOff)}, nil
}

// closed reports whether the region was closed: its memory reads zeros,
// which Read and Range do not present as entries (Lookup, the hot path,
// does not look: it finds no key but 0).
func (t *Table) closed() bool { return t.region != nil && t.region.Closed() }

// Capacity is the number of nodes.
func (t *Table) Capacity() int { return int(t.l.capacity) }

// ValueSize is the bytes of one slot's value.
func (t *Table) ValueSize() int { return int(t.l.valueSize) }

// DataSize is the bytes of a node's immutable data.
func (t *Table) DataSize() int { return int(t.l.dataSize) }

// NSlots is the number of value slots per node.
func (t *Table) NSlots() int { return int(t.l.nslots) }

// Columns are the schema's names for the key, data and value fields.
func (t *Table) Columns() []shm.Column { return t.cols }

// Stats are the table's counters (informational, each read atomically).
type Stats struct {
	Count, Inserts, Deletes, InsertFull uint64
	// Swept: rows the producer removed because their process was gone
	// (ABI 1.5; 0 in regions of older producers).
	Swept uint64
}

// Stats reads the table's statistics.
func (t *Table) Stats() Stats {
	defer runtime.KeepAlive(t)
	return Stats{
		Count:      atomic.LoadUint64((*uint64)(unsafe.Add(t.base, abi.HashCountOff))),
		Inserts:    atomic.LoadUint64((*uint64)(unsafe.Add(t.base, abi.HashInsertsOff))),
		Deletes:    atomic.LoadUint64((*uint64)(unsafe.Add(t.base, abi.HashDeletesOff))),
		InsertFull: atomic.LoadUint64((*uint64)(unsafe.Add(t.base, abi.HashInsertFullOff))),
		Swept:      atomic.LoadUint64((*uint64)(unsafe.Add(t.base, abi.HashSweptOff))),
	}
}

func (t *Table) node(i uint32) unsafe.Pointer {
	return unsafe.Add(t.nodes, uintptr(i)*uintptr(t.l.nodeSize))
}

// head is bucket b's chain head: the Head field of node b (the bucket's
// home node), so a key stored at home is found in the line of its head.
func (t *Table) head(b uint32) *uint32 {
	return (*uint32)(unsafe.Add(t.nodes, uintptr(b)*uintptr(t.l.nodeSize)+abi.NodeHeadOff))
}

func ld32(p unsafe.Pointer, off uintptr) uint32 {
	return atomic.LoadUint32((*uint32)(unsafe.Add(p, off)))
}
func ld64(p unsafe.Pointer, off uintptr) uint64 {
	return atomic.LoadUint64((*uint64)(unsafe.Add(p, off)))
}

// find walks bucket b for key (L1..L7 of doc.go). It returns the node
// pointer and the node seq it validated, or nil. restart is true when the
// walk must start over.
func (t *Table) find(key uint64, b uint32) (n unsafe.Pointer, seq uint32, restart bool, err error) {
	i := atomic.LoadUint32(t.head(b))
	for steps := uint32(0); i != 0; steps++ {
		if i > t.l.capacity || steps > t.l.capacity {
			return nil, 0, false, fmt.Errorf("rcuhash %q: chain of bucket %d leaves the table or loops: %w", t.name, b, shm.ErrCorrupt)
		}
		p := t.node(i - 1)
		s := ld32(p, abi.NodeSeqOff) // L3
		if s&1 != 0 {
			return nil, 0, true, nil // L4
		}
		k := ld64(p, abi.NodeKeyOff) // L5
		nb := ld32(p, abi.NodeBucketOff)
		next := ld32(p, abi.NodeNextOff)
		if ld32(p, abi.NodeSeqOff) != s || nb != b { // L6, L7
			return nil, 0, true, nil
		}
		if k == key {
			return p, s, false, nil
		}
		i = next
	}
	return nil, 0, false, nil
}

// copySlot copies slot j's value of node p into dst (L8 for one slot).
func (t *Table) copySlot(p unsafe.Pointer, j uint32, dst []byte) bool {
	sp := unsafe.Add(p, uintptr(t.l.slotsOff)+uintptr(j)*uintptr(t.l.slotStride))
	v1 := ld32(sp, abi.SlotSeqOff)
	if v1&1 != 0 {
		return false
	}
	vp := unsafe.Add(sp, abi.SlotHeadSize)
	n := uintptr(t.l.valueSize)
	dst = dst[:n]
	for off := uintptr(0); off < n; off += 8 {
		binary.LittleEndian.PutUint64(dst[off:], ld64(vp, off))
	}
	return ld32(sp, abi.SlotSeqOff) == v1
}

// Lookup copies the value of key into dst. With one slot per node it is
// that slot's value; with several (per-CPU writers) it is the word-wise
// sum of the slots' u64 words, each slot read consistently. It returns
// an error wrapping shm.ErrNotFound, shm.ErrRetry, shm.ErrCorrupt or
// ErrShortBuffer.
//
// Concurrency: wait-free (at most abi.MaxRetries × (capacity+1) node
// visits); never torn; safe against the structure writer and slot
// writers in any process; no false hits, no missed keys that are live for
// the whole call (guarantees 1-4 of doc.go).
func (t *Table) Lookup(key uint64, dst []byte) error {
	if uintptr(len(dst)) < uintptr(t.l.valueSize) {
		return t.errShort(len(dst))
	}
	var st status
	if t.l.nslots == 1 {
		st = t.lookup1(key, dst)
	} else {
		st = t.lookupSlow(key, dst)
	}
	runtime.KeepAlive(t) // the mapping stays until t is unreachable
	if st == found {
		return nil
	}
	return t.statusErr(st, key)
}

type status uint8

const (
	found status = iota
	notFound
	retryExhausted
	corruptChain
)

func (t *Table) statusErr(st status, key uint64) error {
	switch st {
	case notFound:
		return t.errNotFound(key)
	case retryExhausted:
		return t.errRetry(key)
	}
	return t.errCorrupt(uint32(abi.Hash(key)) & t.mask)
}

// lookup1 is Lookup for tables with one slot per node. Its first part is
// the hot path, a key in its home node at the head of its chain (L1-L8
// for the first node, straight-line so its state stays in registers);
// anything else goes to the general walk, lookupSlow.
func (t *Table) lookup1(key uint64, dst []byte) status {
	b := uint32(abi.Hash(key)) & t.mask
	home := unsafe.Add(t.nodes, uintptr(b)*uintptr(t.l.nodeSize))
	if atomic.LoadUint32((*uint32)(unsafe.Add(home, abi.NodeHeadOff))) == b+1 { // L1
		s := ld32(home, abi.NodeSeqOff) // L3
		if s&1 == 0 && ld64(home, abi.NodeKeyOff) == key && ld32(home, abi.NodeBucketOff) == b {
			sp := unsafe.Add(home, uintptr(t.l.slotsOff)) // L8
			v1 := ld32(sp, abi.SlotSeqOff)
			vp := unsafe.Add(sp, abi.SlotHeadSize)
			n := int(t.l.valueSize)
			if n == 64 && len(dst) >= 64 {
				// The common 64-byte value, unrolled.
				d := (*[64]byte)(dst)
				binary.LittleEndian.PutUint64(d[0:], ld64(vp, 0))
				binary.LittleEndian.PutUint64(d[8*1:], ld64(vp, 8*1))
				binary.LittleEndian.PutUint64(d[8*2:], ld64(vp, 8*2))
				binary.LittleEndian.PutUint64(d[8*3:], ld64(vp, 8*3))
				binary.LittleEndian.PutUint64(d[8*4:], ld64(vp, 8*4))
				binary.LittleEndian.PutUint64(d[8*5:], ld64(vp, 8*5))
				binary.LittleEndian.PutUint64(d[8*6:], ld64(vp, 8*6))
				binary.LittleEndian.PutUint64(d[8*7:], ld64(vp, 8*7))
			} else if n <= len(dst) {
				dst := dst[:n]
				for off := 0; off+8 <= len(dst); off += 8 {
					binary.LittleEndian.PutUint64(dst[off:], ld64(vp, uintptr(off)))
				}
			}
			if n <= len(dst) && v1&1 == 0 && ld32(sp, abi.SlotSeqOff) == v1 && ld32(home, abi.NodeSeqOff) == s {
				return found
			}
		}
	}
	return t.lookupSlow(key, dst)
}

// lookupSlow is the general lookup (L1-L8 with retries): any chain
// position, and the sum of the slots when there are several.
func (t *Table) lookupSlow(key uint64, dst []byte) status {
	b := uint32(abi.Hash(key)) & t.mask
	for try := 0; try < abi.MaxRetries; try++ {
		p, s, restart, err := t.find(key, b)
		switch {
		case err != nil:
			return corruptChain
		case restart:
			continue
		case p == nil:
			return notFound
		}
		if t.l.nslots == 1 {
			if t.copySlot(p, 0, dst) && ld32(p, abi.NodeSeqOff) == s {
				return found
			}
		} else if t.sumSlots(p, s, dst) {
			return found
		}
	}
	return retryExhausted
}

func (t *Table) errShort(n int) error {
	return fmt.Errorf("rcuhash %q: %d bytes for a %d-byte value: %w", t.name, n, t.l.valueSize, ErrShortBuffer)
}

func (t *Table) errCorrupt(b uint32) error {
	return fmt.Errorf("rcuhash %q: chain of bucket %d leaves the table or loops: %w", t.name, b, shm.ErrCorrupt)
}

func (t *Table) errNotFound(key uint64) error {
	return fmt.Errorf("rcuhash %q: key %d: %w", t.name, key, shm.ErrNotFound)
}

func (t *Table) errRetry(key uint64) error {
	return fmt.Errorf("rcuhash %q: key %d: %w", t.name, key, shm.ErrRetry)
}

// sumSlots accumulates every slot's u64 words into dst, each slot read
// under its seqcount, then re-checks the node seq.
func (t *Table) sumSlots(p unsafe.Pointer, s uint32, dst []byte) bool {
	n := uintptr(t.l.valueSize)
	dst = dst[:n]
	clear(dst)
	for j := uint32(0); j < t.l.nslots; j++ {
		sp := unsafe.Add(p, uintptr(t.l.slotsOff)+uintptr(j)*uintptr(t.l.slotStride))
		v1 := ld32(sp, abi.SlotSeqOff)
		if v1&1 != 0 {
			return false
		}
		vp := unsafe.Add(sp, abi.SlotHeadSize)
		for off := uintptr(0); off < n; off += 8 {
			binary.LittleEndian.PutUint64(dst[off:], binary.LittleEndian.Uint64(dst[off:])+ld64(vp, off))
		}
		if ld32(sp, abi.SlotSeqOff) != v1 {
			return false
		}
	}
	return ld32(p, abi.NodeSeqOff) == s
}

// Read copies the node data of key into data (if non-nil, at least
// DataSize bytes) and every slot's raw value into slots (if non-nil, at
// least NSlots×ValueSize bytes, slot j at j×ValueSize), all from one
// validated instant of the node. Same errors and contract as Lookup.
func (t *Table) Read(key uint64, data, slots []byte) error {
	if data != nil && len(data) < int(t.l.dataSize) || slots != nil && len(slots) < int(t.l.nslots*t.l.valueSize) {
		return fmt.Errorf("rcuhash %q: %w", t.name, ErrShortBuffer)
	}
	defer runtime.KeepAlive(t)
	if t.closed() {
		return fmt.Errorf("rcuhash %q: key %d: %w", t.name, key, shm.ErrClosed)
	}
	b := uint32(abi.Hash(key)) & t.mask
	for try := 0; try < abi.MaxRetries; try++ {
		p, s, restart, err := t.find(key, b)
		if err != nil {
			return err
		}
		if restart {
			continue
		}
		if p == nil {
			return fmt.Errorf("rcuhash %q: key %d: %w", t.name, key, shm.ErrNotFound)
		}
		if t.readNode(p, s, data, slots) {
			return nil
		}
	}
	return fmt.Errorf("rcuhash %q: key %d: %w", t.name, key, shm.ErrRetry)
}

func (t *Table) readNode(p unsafe.Pointer, s uint32, data, slots []byte) bool {
	if data != nil {
		dp := unsafe.Add(p, uintptr(t.l.dataOff))
		for off := uintptr(0); off < uintptr(t.l.dataSize); off += 8 {
			binary.LittleEndian.PutUint64(data[off:], ld64(dp, off))
		}
	}
	if slots != nil {
		vs := uint32(t.l.valueSize)
		for j := uint32(0); j < t.l.nslots; j++ {
			if !t.copySlot(p, j, slots[j*vs:(j+1)*vs]) {
				return false
			}
		}
	}
	return ld32(p, abi.NodeSeqOff) == s
}

// Entry is one node seen by Range.
type Entry struct {
	Key   uint64
	Data  []byte // DataSize bytes
	Slots []byte // NSlots × ValueSize bytes
}

// Range calls fn for every live node in node-index order, each read
// consistently (as Read); it stops when fn returns false. The slices in
// Entry are reused between calls. Nodes changing during the walk are
// retried up to abi.MaxRetries times and then skipped and counted in the
// returned skipped count. It is not a snapshot of the whole table.
//
// Concurrency: wait-free; bounded by capacity × MaxRetries node reads.
func (t *Table) Range(fn func(e *Entry) bool) (skipped int) {
	defer runtime.KeepAlive(t)
	if t.closed() {
		return 0 // zero pages since Close: no entry
	}
	e := &Entry{Data: make([]byte, t.l.dataSize), Slots: make([]byte, t.l.nslots*t.l.valueSize)}
	for i := uint32(0); i < t.l.capacity; i++ {
		p := t.node(i)
		read, live := false, true
		for try := 0; try < abi.MaxRetries; try++ {
			s := ld32(p, abi.NodeSeqOff)
			if s&1 != 0 {
				live = false // free, or mid-insert: not live yet
				break
			}
			e.Key = ld64(p, abi.NodeKeyOff)
			if t.readNode(p, s, e.Data, e.Slots) {
				read = true
				break
			}
		}
		switch {
		case read:
			if !fn(e) {
				return skipped
			}
		case live:
			skipped++
		}
	}
	return skipped
}
