package bpfrt

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"sync"
)

// Ring buffer record header flags (as the kernel's BPF_RINGBUF_*_BIT).
const (
	rbBusy    = 1 << 31
	rbDiscard = 1 << 30
	rbHdrSize = 8
)

// RingBufMap is BPF_MAP_TYPE_RINGBUF in userspace: programs reserve a
// record (bpf_ringbuf_reserve), fill it in place and submit or discard it,
// or copy one in (bpf_ringbuf_output); the application reads submitted
// records in order with Read. Records live in a byte ring the map owns;
// a record is 8-byte aligned and preceded by an 8-byte header (length and
// busy/discard bits), as in the kernel. Safe for concurrent use.
type RingBufMap struct {
	mu         sync.Mutex
	data       []byte
	prod, cons uint64 // byte positions, ever increasing
}

// NewRingBufMap returns a ring buffer of size bytes (a power of two, at
// least 4096, as the kernel requires).
func NewRingBufMap(size int) (*RingBufMap, error) {
	if size < 4096 || size&(size-1) != 0 || size > 1<<30 {
		return nil, fmt.Errorf("create ringbuf map: size %d is not a power of two in [4096, 2^30]: %w", size, ErrNotSupported)
	}
	return &RingBufMap{data: make([]byte, size)}, nil
}

func (m *RingBufMap) KeySize() int                       { return 0 }
func (m *RingBufMap) ValueSize() int                     { return 0 }
func (m *RingBufMap) MaxEntries() int                    { return len(m.data) }
func (m *RingBufMap) memory() []byte                     { return m.data }
func (m *RingBufMap) Lookup([]byte) []byte               { return nil }
func (m *RingBufMap) Update(_, _ []byte, _ uint64) error { return ErrNotSupported }
func (m *RingBufMap) Delete([]byte) error                { return ErrNotSupported }

func (m *RingBufMap) hdr(pos uint64) []byte {
	off := pos & uint64(len(m.data)-1)
	return m.data[off : off+rbHdrSize]
}

// reserve returns the record's payload, or nil when the ring is full.
func (m *RingBufMap) reserve(size uint64) []byte {
	if size == 0 || size > uint64(len(m.data))/4 {
		return nil
	}
	need := (size + rbHdrSize + 7) &^ 7
	m.mu.Lock()
	defer m.mu.Unlock()
	n := uint64(len(m.data))
	pad := uint64(0)
	if off := m.prod & (n - 1); off+need > n {
		pad = n - off // records never wrap: skip to the start
	}
	if m.prod+pad+need-m.cons > n {
		return nil
	}
	if pad > 0 {
		binary.LittleEndian.PutUint32(m.hdr(m.prod), uint32(pad-rbHdrSize)|rbDiscard)
		m.prod += pad
	}
	h := m.hdr(m.prod)
	binary.LittleEndian.PutUint32(h, uint32(size)|rbBusy)
	binary.LittleEndian.PutUint32(h[4:], 0) //kushm:offsets-ok the BPF ring buffer's record header (kernel ABI), not region bytes
	off := (m.prod & (n - 1)) + rbHdrSize
	m.prod += need
	return m.data[off : off+size : off+size]
}

// commit marks the record whose payload starts at off submitted or
// discarded. It reports false when off is not a reserved record.
func (m *RingBufMap) commit(off uint64, discard bool) bool {
	if off < rbHdrSize || off >= uint64(len(m.data)) {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.data[off-rbHdrSize : off]
	l := binary.LittleEndian.Uint32(h)
	if l&rbBusy == 0 {
		return false
	}
	l &^= rbBusy
	if discard {
		l |= rbDiscard
	}
	binary.LittleEndian.PutUint32(h, l)
	return true
}

// Read returns the next submitted record (a copy), skipping discarded
// ones; ok is false when there is none (or the oldest is still being
// written).
func (m *RingBufMap) Read() (rec []byte, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := uint64(len(m.data))
	for m.cons < m.prod {
		h := m.hdr(m.cons)
		l := binary.LittleEndian.Uint32(h)
		if l&rbBusy != 0 {
			return nil, false
		}
		size := uint64(l &^ (rbBusy | rbDiscard))
		need := (size + rbHdrSize + 7) &^ 7
		if need > n || m.cons+need > m.prod {
			// a program overwrote the header: drop everything pending.
			m.cons = m.prod
			return nil, false
		}
		off := (m.cons & (n - 1)) + rbHdrSize
		m.cons += need
		if l&rbDiscard != 0 {
			continue
		}
		return append([]byte(nil), m.data[off:off+size]...), true
	}
	return nil, false
}

func (c *Call) ringbuf(i int) (*RingBufMap, error) {
	m, err := c.Map(i)
	if err != nil {
		return nil, err
	}
	rb, ok := m.(*RingBufMap)
	if !ok {
		return nil, fmt.Errorf("argument %d is not a ringbuf map", i+1)
	}
	return rb, nil
}

// ringbufOf finds the ring buffer holding program address a.
func (c *Call) ringbufOf(a uint64) (*RingBufMap, uint64, bool) {
	for _, m := range c.vm.p.maps {
		if rb, ok := m.(*RingBufMap); ok {
			if rel := a - addrOf(rb.data); rel < uint64(len(rb.data)) {
				return rb, rel, true
			}
		}
	}
	return nil, 0, false
}

var currentComm = func() []byte {
	b, _ := os.ReadFile("/proc/self/comm")
	return []byte(strings.TrimSpace(string(b)))
}()

// Ring buffer and task helpers (the kernel's IDs).
const (
	HelperGetCurrentComm = 16
	HelperRingbufOutput  = 130
	HelperRingbufReserve = 131
	HelperRingbufSubmit  = 132
	HelperRingbufDiscard = 133
)

func ringbufHelpers() []Helper {
	commit := func(discard bool) func(c *Call) (uint64, error) {
		return func(c *Call) (uint64, error) {
			rb, off, ok := c.ringbufOf(c.Args[0])
			if !ok || !rb.commit(off, discard) {
				return 0, fmt.Errorf("%#x is not a reserved ringbuf record", c.Args[0])
			}
			return 0, nil
		}
	}
	return []Helper{
		{Name: "bpf_ringbuf_output", ID: HelperRingbufOutput, Args: []ArgKind{ArgMap, ArgMem, ArgSize, ArgScalar}, Fn: func(c *Call) (uint64, error) {
			rb, err := c.ringbuf(0)
			if err != nil {
				return 0, err
			}
			rec := rb.reserve(uint64(len(c.Mem(1))))
			if rec == nil {
				return errno(eAGAIN), nil
			}
			copy(rec, c.Mem(1))
			rb.commit(addrOf(rec)-addrOf(rb.data), false)
			return 0, nil
		}},
		{Name: "bpf_ringbuf_reserve", ID: HelperRingbufReserve, Args: []ArgKind{ArgMap, ArgScalar, ArgScalar}, Fn: func(c *Call) (uint64, error) {
			rb, err := c.ringbuf(0)
			if err != nil {
				return 0, err
			}
			rec := rb.reserve(c.Args[1])
			if rec == nil {
				return 0, nil
			}
			return addrOf(rec), nil
		}},
		{Name: "bpf_ringbuf_submit", ID: HelperRingbufSubmit, Args: []ArgKind{ArgScalar, ArgScalar}, Fn: commit(false)},
		{Name: "bpf_ringbuf_discard", ID: HelperRingbufDiscard, Args: []ArgKind{ArgScalar, ArgScalar}, Fn: commit(true)},
		{Name: "bpf_get_current_comm", ID: HelperGetCurrentComm, Args: []ArgKind{ArgMemOut, ArgSize}, Fn: func(c *Call) (uint64, error) {
			b := c.Mem(0)
			clear(b)
			if len(b) > 0 {
				copy(b[:len(b)-1], currentComm)
			}
			return 0, nil
		}},
	}
}
