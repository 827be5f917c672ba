package bpfrt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// Map errors.
var (
	ErrKeyNotExist = errors.New("key does not exist")
	ErrKeyExist    = errors.New("key already exists")
	ErrMapFull     = errors.New("map is full")
)

// Update flags (the kernel's BPF_ANY, BPF_NOEXIST, BPF_EXIST).
const (
	UpdateAny     = 0
	UpdateNoExist = 1
	UpdateExist   = 2
)

// Map is a map programs reach through map helpers. Values live in memory
// the map owns for its whole lifetime, so a pointer a program got from a
// lookup stays valid (it may see a later value of another key after a
// delete, as in the kernel); Lookup returns a slice aliasing it.
type Map interface {
	KeySize() int
	ValueSize() int
	MaxEntries() int
	Lookup(key []byte) []byte
	Update(key, value []byte, flags uint64) error
	Delete(key []byte) error
	// memory is the backing store programs may access.
	memory() []byte
}

// MapSpec describes a map to create.
type MapSpec struct {
	Type       MapType
	KeySize    int
	ValueSize  int
	MaxEntries int
}

// MapType is the kind of a map.
type MapType int

const (
	Array MapType = iota + 1
	Hash
	// LRUHash is a Hash that evicts an entry instead of refusing an
	// insert when full (an arbitrary one, as the kernel's LRU is
	// approximate).
	LRUHash
)

// NewMap creates a process-local map.
func NewMap(s MapSpec) (Map, error) {
	if s.ValueSize <= 0 || s.MaxEntries <= 0 || s.ValueSize > 1<<20 || s.MaxEntries > 1<<24 ||
		int64(s.ValueSize)*int64(s.MaxEntries) > 1<<30 {
		return nil, fmt.Errorf("create map: bad value size %d or max entries %d: %w", s.ValueSize, s.MaxEntries, ErrNotSupported)
	}
	switch s.Type {
	case Array:
		if s.KeySize != 4 {
			return nil, fmt.Errorf("create array map: key size %d is not 4: %w", s.KeySize, ErrNotSupported)
		}
		return NewArrayMap(s.ValueSize, s.MaxEntries), nil
	case Hash, LRUHash:
		if s.KeySize <= 0 || s.KeySize > 512 {
			return nil, fmt.Errorf("create hash map: key size %d: %w", s.KeySize, ErrNotSupported)
		}
		m := NewHashMap(s.KeySize, s.ValueSize, s.MaxEntries)
		m.lru = s.Type == LRUHash
		return m, nil
	}
	return nil, fmt.Errorf("create map of type %d: %w", s.Type, ErrNotSupported)
}

func roundUp8(n int) int { return (n + 7) &^ 7 }

// ArrayMap is an array of MaxEntries values indexed by a u32 key.
type ArrayMap struct {
	valueSize, stride, n int
	data                 []byte
}

// NewArrayMap returns a zeroed array map.
func NewArrayMap(valueSize, maxEntries int) *ArrayMap {
	st := roundUp8(valueSize)
	return &ArrayMap{valueSize: valueSize, stride: st, n: maxEntries, data: make([]byte, st*maxEntries)}
}

func (m *ArrayMap) KeySize() int    { return 4 }
func (m *ArrayMap) ValueSize() int  { return m.valueSize }
func (m *ArrayMap) MaxEntries() int { return m.n }
func (m *ArrayMap) memory() []byte  { return m.data }
func (m *ArrayMap) base() uint64    { return addrOf(m.data) }

// Value returns the value at index i (aliasing the map), nil if out of range.
func (m *ArrayMap) Value(i int) []byte {
	if i < 0 || i >= m.n {
		return nil
	}
	return m.data[i*m.stride : i*m.stride+m.valueSize : i*m.stride+m.valueSize]
}

func (m *ArrayMap) Lookup(key []byte) []byte {
	if len(key) != 4 {
		return nil
	}
	return m.Value(int(binary.LittleEndian.Uint32(key)))
}

func (m *ArrayMap) Update(key, value []byte, flags uint64) error {
	v := m.Lookup(key)
	if v == nil {
		return ErrKeyNotExist
	}
	if flags == UpdateNoExist {
		return ErrKeyExist
	}
	copy(v, value)
	return nil
}

func (m *ArrayMap) Delete(key []byte) error {
	return fmt.Errorf("delete from an array: %w", ErrNotSupported)
}

// HashMap is a hash map with fixed-size keys and values; values live in a
// slab allocated at creation.
type HashMap struct {
	keySize, valueSize, stride, n int
	mu                            sync.RWMutex
	index                         map[string]int
	free                          []int
	data                          []byte
	lru                           bool
}

// NewHashMap returns an empty hash map.
func NewHashMap(keySize, valueSize, maxEntries int) *HashMap {
	st := roundUp8(valueSize)
	m := &HashMap{keySize: keySize, valueSize: valueSize, stride: st, n: maxEntries,
		index: make(map[string]int), data: make([]byte, st*maxEntries)}
	for i := maxEntries - 1; i >= 0; i-- {
		m.free = append(m.free, i)
	}
	return m
}

func (m *HashMap) KeySize() int    { return m.keySize }
func (m *HashMap) ValueSize() int  { return m.valueSize }
func (m *HashMap) MaxEntries() int { return m.n }
func (m *HashMap) memory() []byte  { return m.data }

func (m *HashMap) slot(i int) []byte {
	return m.data[i*m.stride : i*m.stride+m.valueSize : i*m.stride+m.valueSize]
}

func (m *HashMap) Lookup(key []byte) []byte {
	if len(key) != m.keySize {
		return nil
	}
	m.mu.RLock()
	i, ok := m.index[string(key)]
	m.mu.RUnlock()
	if !ok {
		return nil
	}
	return m.slot(i)
}

func (m *HashMap) Update(key, value []byte, flags uint64) error {
	if len(key) != m.keySize || flags > UpdateExist {
		return fmt.Errorf("update: bad key or flags")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	i, ok := m.index[string(key)]
	switch {
	case ok && flags == UpdateNoExist:
		return ErrKeyExist
	case !ok && flags == UpdateExist:
		return ErrKeyNotExist
	case !ok:
		if len(m.free) == 0 && m.lru {
			for k, j := range m.index {
				delete(m.index, k)
				m.free = append(m.free, j)
				break
			}
		}
		if len(m.free) == 0 {
			return ErrMapFull
		}
		i = m.free[len(m.free)-1]
		m.free = m.free[:len(m.free)-1]
		m.index[string(key)] = i
	}
	copy(m.slot(i), value)
	return nil
}

func (m *HashMap) Delete(key []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, ok := m.index[string(key)]
	if !ok {
		return ErrKeyNotExist
	}
	delete(m.index, string(key))
	m.free = append(m.free, i)
	return nil
}

// Len is the number of keys.
func (m *HashMap) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.index)
}
