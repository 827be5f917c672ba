package rcuhash_test

import (
	"encoding/binary"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
)

func benchTable(b *testing.B, n int) (*shm.Region, *rcuhash.Table, []uint64) {
	// Load factor 1/2: the sizing kushm uses (docs/region-format.md §6).
	spec, err := rcuhash.Spec("t", rcuhash.Geometry{Capacity: 2 * n, ValueSize: 64}, nil)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "r")
	r, err := shm.Create(path, shm.Layout{NCPUs: 1, ProducerKind: abi.ProducerApp, ProducerName: "bench",
		HeartbeatPeriod: time.Hour, Sections: []shm.SectionSpec{spec}}, shm.CreateOptions{GID: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	w, err := rcuhash.OpenWriter(r, "t")
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	keys := make([]uint64, n)
	for i := range keys {
		keys[i] = rng.Uint64()
	}
	// Word 0 of each value is the next key of a random cycle through all
	// keys, so a benchmark can make each lookup depend on the previous
	// one (latency, like the pointer chase) instead of overlapping them.
	o := order(keys)
	v := make([]byte, 64)
	for i, k := range o {
		binary.LittleEndian.PutUint64(v, o[(i+1)%len(o)])
		if err := w.Insert(k, nil, v); err != nil {
			b.Fatal(err)
		}
	}
	// Readers use their own read-only mapping, like another process.
	rr, err := shm.Open(path, shm.Options{AllowStale: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rr.Close() })
	t, err := rcuhash.Open(rr, "t")
	if err != nil {
		b.Fatal(err)
	}
	return r, t, keys
}

// order is a random permutation of the keys, so consecutive lookups hit
// unrelated cache lines.
func order(keys []uint64) []uint64 {
	o := append([]uint64(nil), keys...)
	rand.New(rand.NewPCG(5, 6)).Shuffle(len(o), func(i, j int) { o[i], o[j] = o[j], o[i] })
	return o
}

var sink uint64

// BenchmarkLookup: u64 keys, 64-byte values, each lookup's key taken from
// the previous lookup's value (latency, not overlapped throughput). hot = 1Ki entries (in
// cache), cold = 64Ki entries with random keys; gomap-hot is a Go map of
// the same data; chase-cold is one dependent random load over a working
// set the size of the cold table (the physical limit of a lookup that
// costs one cache miss).
func BenchmarkLookup(b *testing.B) {
	for _, c := range []struct {
		name string
		n    int
	}{{"hot", 1 << 10}, {"cold", 1 << 16}} {
		b.Run(c.name, func(b *testing.B) {
			_, t, keys := benchTable(b, c.n)
			dst := make([]byte, 64)
			k := keys[0]
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// Dependent: the next key comes from this value.
				if err := t.Lookup(k, dst); err != nil {
					b.Fatal(err)
				}
				k = binary.LittleEndian.Uint64(dst)
			}
			sink += k
		})
	}
	b.Run("gomap-hot", func(b *testing.B) {
		n := 1 << 10
		m := make(map[uint64][64]byte, n)
		rng := rand.New(rand.NewPCG(3, 4))
		keys := make([]uint64, n)
		for i := range keys {
			keys[i] = rng.Uint64()
		}
		o := order(keys)
		for i, k := range o {
			var v [64]byte
			binary.LittleEndian.PutUint64(v[:], o[(i+1)%n])
			m[k] = v
		}
		k := keys[0]
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			v, ok := m[k]
			if !ok {
				b.Fatal("missing")
			}
			k = binary.LittleEndian.Uint64(v[:])
		}
		sink += k
	})
	b.Run("chase-cold", func(b *testing.B) {
		// The cold table's bytes: nodes of 128 bytes plus buckets.
		_, t, _ := benchTable(b, 1<<16) // the same bytes as the cold table
		size := t.Capacity() * 128
		lines := size / 64
		next := make([]uint64, lines*8) // one u64 per cache line used
		perm := rand.New(rand.NewPCG(7, 8)).Perm(lines)
		for i := 0; i < lines; i++ {
			next[perm[i]*8] = uint64(perm[(i+1)%lines] * 8)
		}
		p := uint64(perm[0] * 8)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			p = atomic.LoadUint64(&next[p])
		}
		sink += p
	})
	_ = unsafe.Pointer(nil)
}

// BenchmarkWriter: single-writer updates per second while two readers
// look up keys in other goroutines.
func BenchmarkWriter(b *testing.B) {
	r, t, keys := benchTable(b, 1<<10)
	w, err := rcuhash.OpenWriter(r, "t")
	if err != nil {
		b.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst := make([]byte, 64)
			for i := 0; !stop.Load(); i++ {
				t.Lookup(keys[i&1023], dst)
			}
		}()
	}
	refs := make([]rcuhash.Ref, len(keys))
	for i, k := range keys {
		refs[i], _ = w.Ref(k)
	}
	vals := make([]uint64, 8)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		vals[0] = uint64(i)
		if err := w.UpdateRefWords(refs[i&1023], 0, vals); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	stop.Store(true)
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mupdates/s")
}

// BenchmarkWriterAlone: the same updates with no reader running.
func BenchmarkWriterAlone(b *testing.B) {
	r, _, keys := benchTable(b, 1<<10)
	w, err := rcuhash.OpenWriter(r, "t")
	if err != nil {
		b.Fatal(err)
	}
	refs := make([]rcuhash.Ref, len(keys))
	for i, k := range keys {
		refs[i], _ = w.Ref(k)
	}
	vals := make([]uint64, 8)
	for i := 0; i < b.N; i++ {
		vals[0] = uint64(i)
		if err := w.UpdateRefWords(refs[i&1023], 0, vals); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mupdates/s")
}
