package rcuhash

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/shm"
)

// ErrExists: Insert of a key that is already present.
var ErrExists = errors.New("key already present")

// writer is the structure writer's private state: where each key lives
// and which nodes are free (a stack with positions, so that Insert can
// take a key's home node out of the middle in O(1)).
type writer struct {
	index map[uint64]uint32 // key -> node index + 1
	free  []uint32          // free node indexes
	pos   []int32           // pos[i]: index of node i in free, -1 if not free
}

func (w *writer) pushFree(i uint32) {
	w.pos[i] = int32(len(w.free))
	w.free = append(w.free, i)
}

// take removes node i from the free set.
func (w *writer) take(i uint32) {
	p := w.pos[i]
	last := w.free[len(w.free)-1]
	w.free[p] = last
	w.pos[last] = p
	w.free = w.free[:len(w.free)-1]
	w.pos[i] = -1
}

// OpenWriter returns the structure writer's view of an rcuhash section of
// a region the caller created or adopted (mapped read-write). It rebuilds
// the writer's private state from the table: live nodes reachable from
// their bucket become the index; every other node (free, or orphaned by a
// writer that died mid-delete) is made free. There must be one structure
// writer per table (doc.go, "who writes what").
func OpenWriter(r *shm.Region, name string) (*Table, error) {
	t, err := Open(r, name)
	if err != nil {
		return nil, err
	}
	if !t.writable {
		return nil, fmt.Errorf("rcuhash %q writer: %w", name, shm.ErrReadOnly)
	}
	if err := t.rebuild(); err != nil {
		return nil, fmt.Errorf("rcuhash %q writer: %w", name, err)
	}
	return t, nil
}

func st32(p unsafe.Pointer, off uintptr, v uint32) {
	atomic.StoreUint32((*uint32)(unsafe.Add(p, off)), v)
}
func st64(p unsafe.Pointer, off uintptr, v uint64) {
	atomic.StoreUint64((*uint64)(unsafe.Add(p, off)), v)
}

func (t *Table) stat(off uintptr) *uint64 { return (*uint64)(unsafe.Add(t.base, off)) }

func (t *Table) rebuild() error {
	w := &writer{index: make(map[uint64]uint32), pos: make([]int32, t.l.capacity)}
	reach := make([]bool, t.l.capacity)
	for b := uint32(0); b < t.l.nbuckets; b++ {
		prev := t.head(b)
		for steps := uint32(0); ; steps++ {
			i := atomic.LoadUint32(prev)
			if i == 0 {
				break
			}
			if i > t.l.capacity || steps > t.l.capacity || reach[i-1] {
				// Corrupt chain: cut it here; the rest is freed below.
				atomic.StoreUint32(prev, 0)
				break
			}
			p := t.node(i - 1)
			s := ld32(p, abi.NodeSeqOff)
			key := ld64(p, abi.NodeKeyOff)
			if s&1 != 0 || ld32(p, abi.NodeBucketOff) != b || uint32(abi.Hash(key))&t.mask != b || w.index[key] != 0 {
				// Not a live node of this bucket: unlink it.
				atomic.StoreUint32(prev, ld32(p, abi.NodeNextOff))
				continue
			}
			reach[i-1] = true
			w.index[key] = i
			prev = (*uint32)(unsafe.Add(p, abi.NodeNextOff))
		}
	}
	// Free set: every unreachable node, made odd (dead).
	for i := t.l.capacity; i > 0; i-- {
		if reach[i-1] {
			w.pos[i-1] = -1
			continue
		}
		p := t.node(i - 1)
		if s := ld32(p, abi.NodeSeqOff); s&1 == 0 {
			st32(p, abi.NodeSeqOff, s+1)
		}
		w.pushFree(i - 1)
	}
	atomic.StoreUint64(t.stat(abi.HashCountOff), uint64(len(w.index)))
	t.w = w
	return nil
}

func (t *Table) checkWriter() error {
	if t.w == nil {
		return fmt.Errorf("rcuhash %q: not the structure writer (use OpenWriter): %w", t.name, shm.ErrReadOnly)
	}
	return nil
}

// Len is the number of live keys (writer's view).
func (t *Table) Len() int {
	if t.w == nil {
		return int(t.Stats().Count)
	}
	return len(t.w.index)
}

// Has reports whether key is present (writer's view, no memory reads).
func (t *Table) Has(key uint64) bool { return t.w != nil && t.w.index[key] != 0 }

// Insert adds key with its immutable node data and the initial value of
// every slot (val is copied into each slot; nil means zero). A full table
// refuses with shm.ErrFull and counts the refusal in the header's
// insert_full; a present key is refused with ErrExists.
//
// Concurrency: structure writer only (one per table); wait-free for
// readers, which see the key only once it is complete (I1..I6 of doc.go).
func (t *Table) Insert(key uint64, data, val []byte) error {
	defer runtime.KeepAlive(t) // the mapping stays until t is unreachable
	if err := t.checkWriter(); err != nil {
		return err
	}
	if len(data) > int(t.l.dataSize) || len(val) > int(t.l.valueSize) {
		return fmt.Errorf("rcuhash %q: data %d/%d or value %d/%d bytes too long: %w", t.name, len(data), t.l.dataSize, len(val), t.l.valueSize, ErrShortBuffer)
	}
	if t.w.index[key] != 0 {
		return fmt.Errorf("rcuhash %q: key %d: %w", t.name, key, ErrExists)
	}
	if len(t.w.free) == 0 { // I1
		atomic.AddUint64(t.stat(abi.HashInsertFullOff), 1)
		return fmt.Errorf("rcuhash %q: %d entries: %w", t.name, t.l.capacity, shm.ErrFull)
	}
	b := uint32(abi.Hash(key)) & t.mask
	// Prefer the key's home node (node b): its bucket head is in the
	// same cache line, so a lookup costs one miss.
	var i uint32
	if t.w.pos[b] >= 0 {
		i = b + 1
	} else {
		i = t.w.free[len(t.w.free)-1] + 1
	}
	t.w.take(i - 1)
	p := t.node(i - 1)
	s := ld32(p, abi.NodeSeqOff)
	if s&1 == 0 { // should not happen: free nodes are odd
		s++
		st32(p, abi.NodeSeqOff, s)
	}
	// I2: fill the node while it is odd (invisible).
	st64(p, abi.NodeKeyOff, key)
	st32(p, abi.NodeBucketOff, b)
	dp := unsafe.Add(p, uintptr(t.l.dataOff))
	for off := uintptr(0); off < uintptr(t.l.dataSize); off += 8 {
		st64(dp, off, word(data, off))
	}
	for j := uint32(0); j < t.l.nslots; j++ {
		sp := unsafe.Add(p, uintptr(t.l.slotsOff)+uintptr(j)*uintptr(t.l.slotStride))
		vs := ld32(sp, abi.SlotSeqOff)
		if vs&1 != 0 {
			vs++ // a slot left odd by a dead writer: make it even again
		}
		vp := unsafe.Add(sp, abi.SlotHeadSize)
		for off := uintptr(0); off < uintptr(t.l.valueSize); off += 8 {
			pst64(vp, off, word(val, off))
		}
		st32(sp, abi.SlotSeqOff, vs)
	}
	// Link: after the home node when it heads the chain (keeping the
	// home key first), else at the head.
	link := t.head(b)
	if h := atomic.LoadUint32(link); h == b+1 && i != b+1 {
		link = (*uint32)(unsafe.Add(t.node(b), abi.NodeNextOff))
	}
	st32(p, abi.NodeNextOff, atomic.LoadUint32(link))
	st32(p, abi.NodeSeqOff, s+1) // I4: even, live (I3: atomics are ordered)
	atomic.StoreUint32(link, i)  // I6: publish
	t.w.index[key] = i
	atomic.AddUint64(t.stat(abi.HashCountOff), 1)
	atomic.AddUint64(t.stat(abi.HashInsertsOff), 1)
	return nil
}

func word(b []byte, off uintptr) uint64 {
	if off+8 <= uintptr(len(b)) {
		return binary.LittleEndian.Uint64(b[off:])
	}
	if off >= uintptr(len(b)) {
		return 0
	}
	var w [8]byte
	copy(w[:], b[off:])
	return binary.LittleEndian.Uint64(w[:])
}

// Update writes val (ValueSize bytes or fewer, zero-filled) into slot of
// key's node under the slot's seqcount (U1..U3 of doc.go).
//
// Concurrency: the slot's owner only (the structure writer when NSlots is
// 1); readers never see a torn value.
func (t *Table) Update(key uint64, slot int, val []byte) error {
	defer runtime.KeepAlive(t) // the mapping stays until t is unreachable
	if err := t.checkWriter(); err != nil {
		return err
	}
	i := t.w.index[key]
	if i == 0 {
		return fmt.Errorf("rcuhash %q: key %d: %w", t.name, key, shm.ErrNotFound)
	}
	if uint(slot) >= uint(t.l.nslots) || len(val) > int(t.l.valueSize) {
		return fmt.Errorf("rcuhash %q: slot %d or %d-byte value out of range: %w", t.name, slot, len(val), ErrShortBuffer)
	}
	t.writeSlot(t.node(i-1), uint32(slot), val)
	return nil
}

func (t *Table) writeSlot(p unsafe.Pointer, j uint32, val []byte) {
	sp := unsafe.Add(p, uintptr(t.l.slotsOff)+uintptr(j)*uintptr(t.l.slotStride))
	vs := ld32(sp, abi.SlotSeqOff)
	st32(sp, abi.SlotSeqOff, vs+1) // U1
	vp := unsafe.Add(sp, abi.SlotHeadSize)
	for off := uintptr(0); off < uintptr(t.l.valueSize); off += 8 {
		pst64(vp, off, word(val, off)) // U2
	}
	st32(sp, abi.SlotSeqOff, vs+2) // U3
}

// writeSlotWords writes slot j of node p under its seqcount (U1..U3):
// word w of the value becomes vals[w], the rest zero.
func (t *Table) writeSlotWords(p unsafe.Pointer, j uint32, vals []uint64) {
	sp := unsafe.Add(p, uintptr(t.l.slotsOff)+uintptr(j)*uintptr(t.l.slotStride))
	vs := ld32(sp, abi.SlotSeqOff)
	st32(sp, abi.SlotSeqOff, vs+1) // U1
	vp := unsafe.Add(sp, abi.SlotHeadSize)
	n := uintptr(t.l.valueSize) / 8
	for w := uintptr(0); w < n; w++ {
		var v uint64
		if int(w) < len(vals) {
			v = vals[w]
		}
		pst64(vp, 8*w, v) // U2
	}
	st32(sp, abi.SlotSeqOff, vs+2) // U3
}

// UpdateWords is Update for values made of u64 words, without a byte
// buffer: slot's word w becomes vals[w].
func (t *Table) UpdateWords(key uint64, slot int, vals []uint64) error {
	defer runtime.KeepAlive(t) // the mapping stays until t is unreachable
	if err := t.checkWriter(); err != nil {
		return err
	}
	i := t.w.index[key]
	if i == 0 {
		return fmt.Errorf("rcuhash %q: key %d: %w", t.name, key, shm.ErrNotFound)
	}
	if uint(slot) >= uint(t.l.nslots) || len(vals)*8 > int(t.l.valueSize) {
		return fmt.Errorf("rcuhash %q: slot %d or %d words out of range: %w", t.name, slot, len(vals), ErrShortBuffer)
	}
	t.writeSlotWords(t.node(i-1), uint32(slot), vals)
	return nil
}

// SetData replaces the node data of key's live node in place (S1..S4 of
// doc.go): the node's seq goes odd, the data words are stored, and the seq
// goes even again, so a reader that copied data during the change fails
// its final node-seq check and retries; the slots, the key and the node
// index do not change. data is zero-filled to DataSize.
//
// Concurrency: structure writer only. Readers never see a torn data.
func (t *Table) SetData(key uint64, data []byte) error {
	if err := t.checkWriter(); err != nil {
		return err
	}
	if len(data) > int(t.l.dataSize) {
		return fmt.Errorf("rcuhash %q: data %d/%d bytes too long: %w", t.name, len(data), t.l.dataSize, ErrShortBuffer)
	}
	i := t.w.index[key]
	if i == 0 {
		return fmt.Errorf("rcuhash %q: key %d: %w", t.name, key, shm.ErrNotFound)
	}
	p := t.node(i - 1)
	s := ld32(p, 0)
	st32(p, 0, s+1) // S1: odd, changing (S2: atomics are ordered)
	dp := unsafe.Add(p, uintptr(t.l.dataOff))
	for off := uintptr(0); off < uintptr(t.l.dataSize); off += 8 {
		st64(dp, off, word(data, off)) // S3
	}
	st32(p, 0, s+2) // S4: even, live again
	return nil
}

// Delete removes key (D1..D3 of doc.go); its node goes back to the free
// list at once. That is safe for readers in this design (they validate
// seq and bucket, guarantees 1-3); in the kernel, where slot writers find
// nodes without the lock, reuse waits for an RCU grace period instead.
//
// Concurrency: structure writer only.
func (t *Table) Delete(key uint64) error {
	defer runtime.KeepAlive(t) // the mapping stays until t is unreachable
	if err := t.checkWriter(); err != nil {
		return err
	}
	i := t.w.index[key]
	if i == 0 {
		return fmt.Errorf("rcuhash %q: key %d: %w", t.name, key, shm.ErrNotFound)
	}
	p := t.node(i - 1)
	b := ld32(p, abi.NodeBucketOff)
	prev := t.head(b)
	for steps := uint32(0); ; steps++ {
		c := atomic.LoadUint32(prev)
		if c == 0 || steps > t.l.capacity {
			return fmt.Errorf("rcuhash %q: key %d not in its chain: %w", t.name, key, shm.ErrCorrupt)
		}
		if c == i {
			break
		}
		prev = (*uint32)(unsafe.Add(t.node(c-1), abi.NodeNextOff))
	}
	atomic.StoreUint32(prev, ld32(p, abi.NodeNextOff)) // D1: unlink; p.next unchanged
	st32(p, abi.NodeSeqOff, ld32(p, abi.NodeSeqOff)+1) // D3: odd, dead
	t.w.pushFree(i - 1)
	delete(t.w.index, key)
	atomic.AddUint64(t.stat(abi.HashCountOff), ^uint64(0))
	atomic.AddUint64(t.stat(abi.HashDeletesOff), 1)
	return nil
}

// Keys returns the live keys (writer's view).
func (t *Table) Keys() []uint64 {
	if t.w == nil {
		return nil
	}
	ks := make([]uint64, 0, len(t.w.index))
	for k := range t.w.index {
		ks = append(ks, k)
	}
	return ks
}

// HomeFraction is the fraction of live keys stored in their home node
// (writer's view; a measure of how many lookups cost one cache miss).
func (t *Table) HomeFraction() float64 {
	if t.w == nil || len(t.w.index) == 0 {
		return 0
	}
	n := 0
	for k, i := range t.w.index {
		if uint32(abi.Hash(k))&t.mask == i-1 {
			n++
		}
	}
	return float64(n) / float64(len(t.w.index))
}

// pst64 is a plain aligned 8-byte store (one MOV: never torn), used for
// value words written between a slot's two seq stores. The seq stores are
// sequentially consistent atomics (XCHG on amd64, full barriers), which
// order the plain stores between them for readers in any process, exactly
// as WRITE_ONCE plus smp_wmb do in the C twin; the Go compiler does not
// move memory operations across atomic operations. Readers use atomic
// loads for every word.
func pst64(p unsafe.Pointer, off uintptr, v uint64) { *(*uint64)(unsafe.Add(p, off)) = v }

// Ref names a live key's node for repeated updates without a lookup in
// the writer's index (the provider updates every watched process on every
// tick). A Ref stays valid until its key is deleted.
type Ref struct {
	key uint64
	idx uint32 // node index + 1
}

// Ref returns the Ref of key, false if key is not present.
func (t *Table) Ref(key uint64) (Ref, bool) {
	if t.w == nil {
		return Ref{}, false
	}
	i := t.w.index[key]
	return Ref{key: key, idx: i}, i != 0
}

// UpdateRefWords is UpdateWords through a Ref. A Ref whose key has been
// deleted is refused with shm.ErrNotFound (checked against the node, so a
// stale Ref can never write into another key's node).
func (t *Table) UpdateRefWords(r Ref, slot int, vals []uint64) error {
	defer runtime.KeepAlive(t) // the mapping stays until t is unreachable
	if err := t.checkWriter(); err != nil {
		return err
	}
	if r.idx == 0 || r.idx > t.l.capacity || uint(slot) >= uint(t.l.nslots) || len(vals)*8 > int(t.l.valueSize) {
		return fmt.Errorf("rcuhash %q: bad ref, slot %d or %d words: %w", t.name, slot, len(vals), shm.ErrNotFound)
	}
	p := t.node(r.idx - 1)
	if ld32(p, abi.NodeSeqOff)&1 != 0 || ld64(p, abi.NodeKeyOff) != r.key {
		return fmt.Errorf("rcuhash %q: key %d was deleted: %w", t.name, r.key, shm.ErrNotFound)
	}
	t.writeSlotWords(p, uint32(slot), vals)
	return nil
}
