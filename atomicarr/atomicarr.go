package atomicarr

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/shm"
)

// Array is a view of an atomicarr section: Rows() rows (one per CPU) of
// Slots() u64 slots, each row cache-line aligned with its own seqcount.
type Array struct {
	name     string
	region   *shm.Region // keeps the mapping alive while the view is (see shm.Region)
	mem      []byte
	base     unsafe.Pointer
	rows     int
	slots    int
	stride   uintptr
	writable bool
	cols     []shm.Column
}

// Spec describes an atomicarr section of rows × slots for shm.Create.
// Columns name the slots (Offset is filled in from the slot index when
// zero); len(cols) may be less than slots.
func Spec(name string, rows, slots int, cols []shm.ColumnSpec) shm.SectionSpec {
	stride := RowStride(slots)
	cc := make([]shm.ColumnSpec, len(cols))
	for i, c := range cols {
		if c.Offset == 0 {
			c.Offset = uint32(abi.RowSlotsOff + 8*i)
		}
		if c.Type == 0 {
			c.Type = abi.ColU64
		}
		if c.Size == 0 {
			c.Size = 8
		}
		if c.Kind == 0 {
			c.Kind = abi.ColCounter
		}
		cc[i] = c
	}
	return shm.SectionSpec{
		Name: name, Kind: abi.SecAtomicArr, Flags: abi.SecFlagProducer,
		Size: uint64(stride) * uint64(rows), ElemSize: uint32(stride), Count: uint32(rows),
		Aux0: uint32(slots), Columns: cc,
	}
}

// RowStride is the bytes per row for n slots: header plus slots, rounded
// up to a cache line.
func RowStride(slots int) int {
	return (abi.RowSlotsOff + 8*slots + abi.CacheLine - 1) / abi.CacheLine * abi.CacheLine
}

// Open returns a view of the atomicarr section name of r. It validates
// the geometry against the section's bounds.
func Open(r *shm.Region, name string) (*Array, error) {
	s, err := r.Section(name)
	if err != nil {
		return nil, fmt.Errorf("open atomicarr: %w", err)
	}
	b, err := r.Bytes(s)
	if err != nil {
		return nil, fmt.Errorf("open atomicarr %q: %w", name, err)
	}
	// Rows are per CPU: a row count beyond the header's CPU count is a
	// lie that would cost readers time and memory.
	if n := r.Header().NCPUs; s.Count > n {
		return nil, fmt.Errorf("open atomicarr %q: %d rows for %d CPUs: %w", name, s.Count, n, shm.ErrCorrupt)
	}
	a, err := view(name, s.Kind, b, s.ElemSize, s.Count, s.Aux0)
	if err != nil {
		return nil, fmt.Errorf("open atomicarr %q: %w", name, err)
	}
	a.writable = r.Writable(s)
	a.cols = s.Columns
	a.region = r
	return a, nil
}

func view(name string, kind uint32, b []byte, stride, rows, slots uint32) (*Array, error) {
	switch {
	case kind != abi.SecAtomicArr:
		return nil, fmt.Errorf("section kind %s, want atomicarr: %w", shm.KindName(kind), shm.ErrCorrupt)
	case slots == 0 || slots > abi.MaxRowSlots:
		return nil, fmt.Errorf("%d slots per row: %w", slots, shm.ErrCorrupt)
	case stride%abi.CacheLine != 0 || uint64(stride) < abi.RowSlotsOff+8*uint64(slots):
		return nil, fmt.Errorf("row stride %d for %d slots: %w", stride, slots, shm.ErrCorrupt)
	case rows == 0 || uint64(rows)*uint64(stride) > uint64(len(b)):
		return nil, fmt.Errorf("%d rows of %d bytes in %d: %w", rows, stride, len(b), shm.ErrCorrupt)
	}
	return &Array{name: name, mem: b, base: unsafe.Pointer(unsafe.SliceData(b)),
		rows: int(rows), slots: int(slots), stride: uintptr(stride)}, nil
}

// Rows is the number of rows (CPUs).
func (a *Array) Rows() int { return a.rows }

// Slots is the number of slots per row.
func (a *Array) Slots() int { return a.slots }

// Columns are the schema's names for the slots.
func (a *Array) Columns() []shm.Column { return a.cols }

func (a *Array) word(row int, off uintptr) *uint64 {
	return (*uint64)(unsafe.Add(a.base, uintptr(row)*a.stride+off))
}

func (a *Array) in(row, slot int) bool {
	return uint(row) < uint(a.rows) && uint(slot) < uint(a.slots)
}

// Load returns slot of row with one atomic load. ok is false when row or
// slot is out of range. It does not look at the valid mask (see Valid).
//
// Concurrency: wait-free; consistent with itself only (use Snapshot for a
// whole row).
func (a *Array) Load(row, slot int) (v uint64, ok bool) {
	if !a.in(row, slot) {
		return 0, false
	}
	v = atomic.LoadUint64(a.word(row, abi.RowSlotsOff+uintptr(slot)*8))
	runtime.KeepAlive(a) // the mapping stays until a is unreachable
	return v, true
}

// Valid returns the valid mask of row (bit i: slot i holds a reading).
func (a *Array) Valid(row int) uint64 {
	if uint(row) >= uint(a.rows) {
		return 0
	}
	v := atomic.LoadUint64(a.word(row, abi.RowValidOff))
	runtime.KeepAlive(a)
	return v
}

// Snapshot is a consistent copy of one row.
type Snapshot struct {
	Row    int
	TimeNs uint64 // CLOCK_MONOTONIC of the sample
	Valid  uint64 // bit i: Vals[i] is a real reading
	Vals   []uint64
}

// Has reports whether slot i holds a real reading.
func (s *Snapshot) Has(i int) bool {
	return i >= 0 && i < 64 && s.Valid&(1<<uint(i)) != 0 && i < len(s.Vals)
}

// Snapshot copies row into dst (reusing dst.Vals) so that all its values
// come from one update (guarantee 1 of doc.go). It returns an error
// wrapping shm.ErrRetry after abi.MaxRetries attempts that overlapped a
// write, never blocking.
//
// Concurrency: wait-free (bounded retries); any number of readers; safe
// against one concurrent writer of the row.
func (a *Array) Snapshot(row int, dst *Snapshot) error {
	if uint(row) >= uint(a.rows) {
		return fmt.Errorf("atomicarr %q: row %d of %d: %w", a.name, row, a.rows, shm.ErrNotFound)
	}
	if cap(dst.Vals) < a.slots {
		dst.Vals = make([]uint64, a.slots)
	}
	dst.Vals = dst.Vals[:a.slots]
	rowp := unsafe.Add(a.base, uintptr(row)*a.stride)
	seqp := (*uint64)(rowp)
	for try := 0; try < abi.MaxRetries; try++ {
		s1 := atomic.LoadUint64(seqp) // R1 (acquire: pairs with W4/W5)
		if s1&1 != 0 {
			continue
		}
		dst.TimeNs = atomic.LoadUint64((*uint64)(unsafe.Add(rowp, abi.RowTimeOff)))
		dst.Valid = atomic.LoadUint64((*uint64)(unsafe.Add(rowp, abi.RowValidOff)))
		for i := range dst.Vals {
			dst.Vals[i] = atomic.LoadUint64((*uint64)(unsafe.Add(rowp, abi.RowSlotsOff+8*i)))
		}
		if atomic.LoadUint64(seqp) == s1 { // R5 (pairs with W1/W2)
			dst.Row = row
			runtime.KeepAlive(a)
			return nil
		}
	}
	runtime.KeepAlive(a)
	return fmt.Errorf("atomicarr %q row %d: %w", a.name, row, shm.ErrRetry)
}

// Update writes a whole row under the seqcount (W1..W5 of doc.go): vals
// into the first len(vals) slots, the sample time and the valid mask.
//
// Concurrency: one writer per row; wait-free for readers.
func (a *Array) Update(row int, timeNs, valid uint64, vals []uint64) error {
	if !a.writable {
		return fmt.Errorf("atomicarr %q: %w", a.name, shm.ErrReadOnly)
	}
	if uint(row) >= uint(a.rows) || len(vals) > a.slots {
		return fmt.Errorf("atomicarr %q: row %d or %d values out of range: %w", a.name, row, len(vals), shm.ErrNotFound)
	}
	rowp := unsafe.Add(a.base, uintptr(row)*a.stride)
	seqp := (*uint64)(rowp)
	s := atomic.LoadUint64(seqp)
	if s&1 != 0 {
		// A writer died between W1 and W5: this update completes the
		// row again (the row's one writer is us now).
		s--
	}
	atomic.StoreUint64(seqp, s+1) // W1 (+W2: Go atomics are sequentially consistent)
	atomic.StoreUint64((*uint64)(unsafe.Add(rowp, abi.RowTimeOff)), timeNs)
	atomic.StoreUint64((*uint64)(unsafe.Add(rowp, abi.RowValidOff)), valid)
	for i, v := range vals {
		atomic.StoreUint64((*uint64)(unsafe.Add(rowp, abi.RowSlotsOff+8*i)), v)
	}
	atomic.StoreUint64(seqp, s+2) // W5
	runtime.KeepAlive(a)
	return nil
}

// Repair completes every row a dead writer left mid-update (odd seq), for
// a producer that adopted the region: the row is cleared (valid mask 0:
// every slot n/a until the next sample) and made consistent, which is
// W3..W5 of the interrupted update. It returns the rows repaired.
//
// Concurrency: the rows' writer only.
func (a *Array) Repair() (int, error) {
	if !a.writable {
		return 0, fmt.Errorf("atomicarr %q: %w", a.name, shm.ErrReadOnly)
	}
	zeros := make([]uint64, a.slots)
	n := 0
	for row := 0; row < a.rows; row++ {
		if atomic.LoadUint64(a.word(row, abi.RowSeqOff))&1 != 0 {
			if err := a.Update(row, 0, 0, zeros); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// Store sets one slot with a single atomic store (no seqcount).
func (a *Array) Store(row, slot int, v uint64) error {
	if !a.writable {
		return fmt.Errorf("atomicarr %q: %w", a.name, shm.ErrReadOnly)
	}
	if !a.in(row, slot) {
		return fmt.Errorf("atomicarr %q: row %d slot %d: %w", a.name, row, slot, shm.ErrNotFound)
	}
	atomic.StoreUint64(a.word(row, abi.RowSlotsOff+uintptr(slot)*8), v)
	runtime.KeepAlive(a)
	return nil
}

// Add adds d to one slot atomically and returns the new value.
func (a *Array) Add(row, slot int, d uint64) (uint64, error) {
	if !a.writable {
		return 0, fmt.Errorf("atomicarr %q: %w", a.name, shm.ErrReadOnly)
	}
	if !a.in(row, slot) {
		return 0, fmt.Errorf("atomicarr %q: row %d slot %d: %w", a.name, row, slot, shm.ErrNotFound)
	}
	v := atomic.AddUint64(a.word(row, abi.RowSlotsOff+uintptr(slot)*8), d)
	runtime.KeepAlive(a)
	return v, nil
}

// Delta is the change of one row between two snapshots.
type Delta struct {
	Row     int
	Seconds float64 // time between the samples
	Valid   uint64  // bit i: Diff[i] is meaningful (valid in both, no reset)
	Diff    []uint64
}

// Rate is Diff[i] per second, and false when not valid or no time passed.
func (d *Delta) Rate(i int) (float64, bool) {
	if i < 0 || i >= len(d.Diff) || i >= 64 || d.Valid&(1<<uint(i)) == 0 || d.Seconds <= 0 {
		return 0, false
	}
	return float64(d.Diff[i]) / d.Seconds, true
}

// Diff computes cur - prev for counters. A slot is valid in the result
// only if it is valid in both and did not go backwards (a counter reset).
func Diff(prev, cur *Snapshot) Delta {
	n := min(len(prev.Vals), len(cur.Vals))
	d := Delta{Row: cur.Row, Diff: make([]uint64, n)}
	if cur.TimeNs > prev.TimeNs {
		d.Seconds = float64(cur.TimeNs-prev.TimeNs) / 1e9
	}
	for i := 0; i < n && i < 64; i++ {
		bit := uint64(1) << uint(i)
		if prev.Valid&cur.Valid&bit == 0 || cur.Vals[i] < prev.Vals[i] {
			continue
		}
		d.Valid |= bit
		d.Diff[i] = cur.Vals[i] - prev.Vals[i]
	}
	return d
}
