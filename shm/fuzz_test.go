package shm_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/userside/client/dump"
)

// seedImage builds a small but complete region image: every section kind
// a reader decodes, with a few live hash entries.
func seedImage(tb testing.TB) []byte {
	tb.Helper()
	hs, err := rcuhash.Spec("procs", rcuhash.Geometry{Capacity: 8, ValueSize: 16, DataSize: 8},
		[]shm.ColumnSpec{{Name: "pid", Unit: "id", Type: abi.ColU64, Kind: abi.ColKey, Size: 8}})
	if err != nil {
		tb.Fatal(err)
	}
	l := shm.Layout{NCPUs: 2, ProducerKind: abi.ProducerApp, ProducerName: "seed", HeartbeatPeriod: time.Second,
		Sections: []shm.SectionSpec{
			atomicarr.Spec("pmu", 2, 2, []shm.ColumnSpec{{Name: "a", Unit: "count"}, {Name: "b", Unit: "count"}}),
			hs, shm.TextSpec("info", "hello\n"),
		}}
	path := filepath.Join(tb.TempDir(), "r")
	r, err := shm.Create(path, l, shm.CreateOptions{GID: -1, InlineControl: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	t, _ := rcuhash.OpenWriter(r, "procs")
	for k := uint64(1); k <= 5; k++ {
		t.Insert(k, []byte{byte(k)}, []byte{byte(k), 1, 2, 3})
	}
	t.Delete(3)
	a, _ := atomicarr.Open(r, "pmu")
	a.Update(1, 9, 3, []uint64{10, 20})
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// exercise runs every reader path over a region image; it must return
// errors, never panic, loop without bound or read outside mem.
func exercise(mem []byte) {
	r, err := shm.FromBytes(mem)
	if err != nil {
		return
	}
	for i := range r.Sections() {
		s := &r.Sections()[i]
		switch s.Kind {
		case abi.SecAtomicArr:
			a, err := atomicarr.Open(r, s.Name)
			if err != nil {
				continue
			}
			var snap atomicarr.Snapshot
			for row := -1; row <= a.Rows() && row < 4; row++ {
				a.Snapshot(row, &snap)
				a.Load(row, 0)
				a.Valid(row)
			}
		case abi.SecRCUHash:
			t, err := rcuhash.Open(r, s.Name)
			if err != nil {
				continue
			}
			dst := make([]byte, t.ValueSize())
			for k := uint64(0); k < 8; k++ {
				t.Lookup(k, dst)
				t.Read(k, make([]byte, t.DataSize()), make([]byte, t.NSlots()*t.ValueSize()))
			}
			n := 0
			t.Range(func(e *rcuhash.Entry) bool { n++; return n < 1000 })
		}
	}
	dump.Dump(r, discard{}, dump.Options{})
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

func FuzzRegion(f *testing.F) {
	img := seedImage(f)
	f.Add(img)
	f.Add(img[:4096])
	bad := append([]byte(nil), img...)
	binary.LittleEndian.PutUint32(bad[76:], 60) // absurd section count
	f.Add(bad)
	f.Fuzz(func(t *testing.T, b []byte) {
		exercise(b)
	})
}

// TestHostileImages mutates the seed image field by field with the values
// that break naive readers and checks each is refused or read safely.
func TestHostileImages(t *testing.T) {
	img := seedImage(t)
	values := []uint64{0, 1, 7, 0xff, 0x1000, 0xffff, 0x7fffffff, 0xffffffff, 1 << 40, ^uint64(0)}
	// Header and section table words, and the hash table header of the
	// procs section.
	r, err := shm.FromBytes(img)
	if err != nil {
		t.Fatal(err)
	}
	procs, _ := r.Section("procs")
	var offs []int
	for off := 0; off < 256+64*int(r.Header().SectionCount); off += 4 {
		offs = append(offs, off)
	}
	for off := 0; off < 128; off += 4 {
		offs = append(offs, int(procs.Offset)+off)
	}
	// Bucket heads and node links: cycles and out-of-range indexes.
	for off := 128; off < 128+4*8; off += 4 {
		offs = append(offs, int(procs.Offset)+off)
	}
	n := 0
	for _, off := range offs {
		for _, v := range values {
			m := append([]byte(nil), img...)
			binary.LittleEndian.PutUint32(m[off:], uint32(v))
			exercise(m)
			if off+8 <= len(m) {
				binary.LittleEndian.PutUint64(m[off:], v)
				exercise(m)
			}
			n++
		}
	}
	// A cycle in a chain: every node's next points at itself.
	m := append([]byte(nil), img...)
	nodesOff := int(procs.Offset) + int(binary.LittleEndian.Uint32(m[int(procs.Offset)+44:]))
	nodeSize := int(binary.LittleEndian.Uint32(m[int(procs.Offset)+12:]))
	for i := 0; i < 8; i++ {
		binary.LittleEndian.PutUint32(m[nodesOff+i*nodeSize+4:], uint32(i+1))
	}
	exercise(m)
	t.Logf("%d hostile images read safely", n)
}
