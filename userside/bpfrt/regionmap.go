package bpfrt

import (
	"encoding/binary"
	"fmt"
	"github.com/kushm/kushm/internal/sysstat"
	"sync/atomic"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
)

// regionMapSlots is the number of value snapshots a region map rotates
// through: a pointer a program got from a lookup keeps its value until
// that many further lookups of the same map.
const regionMapSlots = 64

// RegionMap is a read-only map backed by a table of a kushm region: an
// rcuhash section (key: u64, value: the value with per-CPU slots summed)
// (the "syscalls" table: slots merged as docs/helpers.md says) or an
// atomicarr section (key: u32 row, i.e. the CPU; value: the row's u64
// slots). A lookup copies a consistent snapshot into memory the map
// owns and returns it, so programs read region tables with
// bpf_map_lookup_elem as they read process-local maps. Update and Delete
// fail: the producer owns the region.
type RegionMap struct {
	hash      *rcuhash.Table
	arr       *atomicarr.Array
	keySize   int
	valueSize int
	max       int
	stride    int
	next      atomic.Uint32
	data      []byte
	merge     bool // the syscalls table: slots merged as Welford statistics
}

// NewRegionMap returns a map over section name of r.
func NewRegionMap(r *shm.Region, name string) (*RegionMap, error) {
	s, err := r.Section(name)
	if err != nil {
		return nil, fmt.Errorf("region map %s: %w", name, err)
	}
	m := &RegionMap{}
	switch s.Kind {
	case abi.SecRCUHash:
		if m.hash, err = rcuhash.Open(r, name); err != nil {
			return nil, fmt.Errorf("region map: %w", err)
		}
		m.keySize, m.valueSize, m.max = 8, m.hash.ValueSize(), m.hash.Capacity()
		m.merge = name == abi.SecNameSyscalls && (m.valueSize == syscallStatSize || m.valueSize == sysstat.SlotSize)
	case abi.SecAtomicArr:
		if m.arr, err = atomicarr.Open(r, name); err != nil {
			return nil, fmt.Errorf("region map: %w", err)
		}
		m.keySize, m.valueSize, m.max = 4, 8*m.arr.Slots(), m.arr.Rows()
	default:
		return nil, fmt.Errorf("region map %s: section kind %d: %w", name, s.Kind, ErrNotSupported)
	}
	m.stride = roundUp8(m.valueSize)
	m.data = make([]byte, m.stride*regionMapSlots)
	return m, nil
}

func (m *RegionMap) KeySize() int    { return m.keySize }
func (m *RegionMap) ValueSize() int  { return m.valueSize }
func (m *RegionMap) MaxEntries() int { return m.max }
func (m *RegionMap) memory() []byte  { return m.data }

// Lookup returns a snapshot of key's value, nil when absent or when the
// producer kept changing it (retry budget exhausted).
func (m *RegionMap) Lookup(key []byte) []byte {
	if len(key) != m.keySize {
		return nil
	}
	i := int(m.next.Add(1) % regionMapSlots)
	dst := m.data[i*m.stride : i*m.stride+m.valueSize : i*m.stride+m.valueSize]
	if m.merge {
		raw := make([]byte, m.hash.NSlots()*m.valueSize)
		if m.hash.Read(binary.LittleEndian.Uint64(key), nil, raw) != nil {
			return nil
		}
		var acc sysstat.Hist
		var s sysstat.Slot
		for j := 0; j < m.hash.NSlots(); j++ {
			decodeSlot(raw[j*m.valueSize:(j+1)*m.valueSize], &s)
			acc.MergeSlot(&s)
		}
		putSyscallStat(dst, &acc.Stat)
		if m.valueSize >= sysstat.SlotSize {
			// The merged slot in the slot's layout; a bucket sum above
			// 65535 reads as 65535.
			out := sysstat.Slot{Stat: acc.Stat, Total: acc.Total, Decays: acc.Decays}
			for i, c := range acc.Buckets {
				out.Buckets[i] = uint16(min(c, sysstat.HistCountMax))
			}
			sysstat.EncodeSlot(dst, &out)
		}
		return dst
	}
	if m.hash != nil {
		if m.hash.Lookup(binary.LittleEndian.Uint64(key), dst) != nil {
			return nil
		}
		return dst
	}
	var s atomicarr.Snapshot
	if m.arr.Snapshot(int(binary.LittleEndian.Uint32(key)), &s) != nil {
		return nil
	}
	for j, v := range s.Vals {
		if 8*j+8 <= len(dst) {
			binary.LittleEndian.PutUint64(dst[8*j:], v)
		}
	}
	return dst
}

func (m *RegionMap) Update(key, value []byte, flags uint64) error {
	return fmt.Errorf("update a region map: %w", shm.ErrReadOnly)
}

func (m *RegionMap) Delete(key []byte) error {
	return fmt.Errorf("delete from a region map: %w", shm.ErrReadOnly)
}
