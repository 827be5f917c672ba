package rcuhash_test

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
)

func newRegion(t testing.TB, g rcuhash.Geometry) (*shm.Region, *rcuhash.Table) {
	t.Helper()
	spec, err := rcuhash.Spec("t", g, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "region")
	r, err := shm.Create(path, shm.Layout{NCPUs: 2, ProducerKind: abi.ProducerApp, ProducerName: "test",
		HeartbeatPeriod: time.Second, Sections: []shm.SectionSpec{spec}}, shm.CreateOptions{GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	tab, err := rcuhash.OpenWriter(r, "t")
	if err != nil {
		t.Fatal(err)
	}
	return r, tab
}

func val(key uint64, gen uint64, size int) []byte {
	b := make([]byte, size)
	for off := 0; off < size; off += 8 {
		binary.LittleEndian.PutUint64(b[off:], key*1000003+gen+uint64(off))
	}
	return b
}

func TestInsertLookupDelete(t *testing.T) {
	_, tab := newRegion(t, rcuhash.Geometry{Capacity: 128, ValueSize: 64, DataSize: 16})
	for k := uint64(0); k < 128; k++ {
		if err := tab.Insert(k, []byte("data"), val(k, 0, 64)); err != nil {
			t.Fatalf("insert %d: %v", k, err)
		}
	}
	if err := tab.Insert(1000, nil, nil); !errors.Is(err, shm.ErrFull) {
		t.Fatalf("insert into full table: %v", err)
	}
	if st := tab.Stats(); st.InsertFull != 1 || st.Count != 128 {
		t.Fatalf("stats %+v", st)
	}
	if err := tab.Insert(5, nil, nil); !errors.Is(err, rcuhash.ErrExists) {
		t.Fatalf("duplicate insert: %v", err)
	}
	dst := make([]byte, 64)
	for k := uint64(0); k < 100; k++ {
		if err := tab.Lookup(k, dst); err != nil {
			t.Fatalf("lookup %d: %v", k, err)
		}
		if string(dst) != string(val(k, 0, 64)) {
			t.Fatalf("lookup %d: wrong value", k)
		}
	}
	if err := tab.Lookup(12345, dst); !errors.Is(err, shm.ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	for k := uint64(0); k < 100; k += 2 {
		if err := tab.Delete(k); err != nil {
			t.Fatal(err)
		}
	}
	for k := uint64(0); k < 100; k++ {
		err := tab.Lookup(k, dst)
		if k%2 == 0 && !errors.Is(err, shm.ErrNotFound) || k%2 == 1 && err != nil {
			t.Fatalf("after delete, key %d: %v", k, err)
		}
	}
	// Reuse the freed nodes for other keys.
	for k := uint64(1000); k < 1050; k++ {
		if err := tab.Insert(k, nil, val(k, 1, 64)); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	tab.Range(func(e *rcuhash.Entry) bool { n++; return true })
	if n != 128 {
		t.Fatalf("range saw %d", n)
	}
	if err := tab.Update(1001, 0, val(1001, 7, 64)); err != nil {
		t.Fatal(err)
	}
	if err := tab.Lookup(1001, dst); err != nil || string(dst) != string(val(1001, 7, 64)) {
		t.Fatalf("update not visible: %v", err)
	}
}

// TestPerCPUSlots: with one slot per CPU, Lookup sums the slots' words and
// Read returns each slot; each slot is on its own cache lines.
func TestPerCPUSlots(t *testing.T) {
	_, tab := newRegion(t, rcuhash.Geometry{Capacity: 8, NSlots: 3, ValueSize: 16, DataSize: 8})
	if err := tab.Insert(9, []byte("abc"), nil); err != nil {
		t.Fatal(err)
	}
	for slot := 0; slot < 3; slot++ {
		if err := tab.UpdateWords(9, slot, []uint64{uint64(slot + 1), 100}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tab.UpdateWords(9, 3, []uint64{1}); !errors.Is(err, rcuhash.ErrShortBuffer) {
		t.Fatalf("slot out of range: %v", err)
	}
	sum := make([]byte, 16)
	if err := tab.Lookup(9, sum); err != nil {
		t.Fatal(err)
	}
	if a, b := binary.LittleEndian.Uint64(sum), binary.LittleEndian.Uint64(sum[8:]); a != 6 || b != 300 {
		t.Fatalf("sum %d %d", a, b)
	}
	data, slots := make([]byte, 8), make([]byte, 3*16)
	if err := tab.Read(9, data, slots); err != nil {
		t.Fatal(err)
	}
	if string(data[:3]) != "abc" || binary.LittleEndian.Uint64(slots[32:]) != 3 {
		t.Fatalf("read %q %v", data, slots)
	}
	if err := tab.Lookup(9, make([]byte, 8)); !errors.Is(err, rcuhash.ErrShortBuffer) {
		t.Fatalf("short buffer: %v", err)
	}
}

// TestHomePlacement: keys go to their home node when it is free, so most
// lookups read one cache line for head, seq and key.
func TestHomePlacement(t *testing.T) {
	_, tab := newRegion(t, rcuhash.Geometry{Capacity: 1024, ValueSize: 8})
	for k := uint64(0); k < 512; k++ {
		if err := tab.Insert(k*7919, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	// The expected home fraction at load factor 1/2 is (1-e^-0.5)/0.5 ≈ 0.79.
	home := tab.HomeFraction()
	t.Logf("home fraction at load 1/2: %.2f", home)
	if home < 0.7 {
		t.Fatalf("only %.2f of keys at home", home)
	}
}

func TestRefs(t *testing.T) {
	_, tab := newRegion(t, rcuhash.Geometry{Capacity: 8, ValueSize: 8})
	tab.Insert(1, nil, nil)
	ref, ok := tab.Ref(1)
	if !ok {
		t.Fatal("no ref")
	}
	if err := tab.UpdateRefWords(ref, 0, []uint64{5}); err != nil {
		t.Fatal(err)
	}
	v := make([]byte, 8)
	if tab.Lookup(1, v); binary.LittleEndian.Uint64(v) != 5 {
		t.Fatal("update through ref lost")
	}
	tab.Delete(1)
	tab.Insert(2, nil, nil) // may reuse the node
	if err := tab.UpdateRefWords(ref, 0, []uint64{6}); !errors.Is(err, shm.ErrNotFound) {
		t.Fatalf("stale ref: %v", err)
	}
	if tab.Lookup(2, v); binary.LittleEndian.Uint64(v) != 0 {
		t.Fatal("stale ref wrote into another key")
	}
}

// SetData replaces a live node's data in place: readers running all along
// see the old data or the new one, never a mix, and the slots survive.
func TestSetDataNeverTorn(t *testing.T) {
	_, tab := newRegion(t, rcuhash.Geometry{Capacity: 8, ValueSize: 8, DataSize: 32})
	mk := func(gen byte) []byte {
		d := make([]byte, 32)
		for i := range d {
			d[i] = gen
		}
		return d
	}
	if err := tab.Insert(7, mk(0), []byte{42}); err != nil {
		t.Fatal(err)
	}
	if err := tab.SetData(8, mk(1)); !errors.Is(err, shm.ErrNotFound) {
		t.Fatalf("SetData of an absent key: %v, want ErrNotFound", err)
	}
	if err := tab.SetData(7, make([]byte, 40)); !errors.Is(err, rcuhash.ErrShortBuffer) {
		t.Fatalf("SetData of 40 bytes into 32: %v, want ErrShortBuffer", err)
	}
	var stop atomic.Bool
	var torn, reads atomic.Int64
	var wg sync.WaitGroup
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data, slots := make([]byte, 32), make([]byte, 8)
			for !stop.Load() {
				if err := tab.Read(7, data, slots); err != nil {
					if errors.Is(err, shm.ErrRetry) {
						continue
					}
					t.Error(err)
					return
				}
				reads.Add(1)
				for _, b := range data {
					if b != data[0] {
						torn.Add(1)
						break
					}
				}
				if slots[0] != 42 {
					t.Errorf("slot changed by SetData: %v", slots)
					return
				}
			}
		}()
	}
	for gen := 1; gen <= 20000; gen++ {
		if err := tab.SetData(7, mk(byte(gen))); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if torn.Load() != 0 {
		t.Fatalf("%d of %d reads saw torn data", torn.Load(), reads.Load())
	}
	data := make([]byte, 32)
	if err := tab.Read(7, data, nil); err != nil || data[0] != byte(20000%256) {
		t.Fatalf("after SetData: %v %v", data, err)
	}
}
