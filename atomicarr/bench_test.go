package atomicarr_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/shm"
)

func benchArray(b *testing.B) *atomicarr.Array {
	path := filepath.Join(b.TempDir(), "r")
	w, err := shm.Create(path, shm.Layout{NCPUs: 2, ProducerKind: abi.ProducerApp, ProducerName: "bench",
		HeartbeatPeriod: time.Hour, Sections: []shm.SectionSpec{atomicarr.Spec("a", 2, 8, nil)}}, shm.CreateOptions{GID: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.Close() })
	wa, _ := atomicarr.Open(w, "a")
	wa.Update(1, 1, 0xff, []uint64{1, 2, 3, 4, 5, 6, 7, 8})
	r, err := shm.Open(path, shm.Options{AllowStale: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	a, err := atomicarr.Open(r, "a")
	if err != nil {
		b.Fatal(err)
	}
	return a
}

var sink uint64

// BenchmarkLoad: one counter load from the mapped region.
func BenchmarkLoad(b *testing.B) {
	a := benchArray(b)
	var s uint64
	for i := 0; i < b.N; i++ {
		v, _ := a.Load(1, i&7)
		s += v
	}
	sink = s
}

// BenchmarkSnapshot: a consistent snapshot of an 8-counter row.
func BenchmarkSnapshot(b *testing.B) {
	a := benchArray(b)
	var snap atomicarr.Snapshot
	for i := 0; i < b.N; i++ {
		if err := a.Snapshot(1, &snap); err != nil {
			b.Fatal(err)
		}
	}
	sink = snap.Vals[7]
}
