package ring_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/ring"
	"github.com/kushm/kushm/shm"
)

func region(t *testing.T, specs ...shm.SectionSpec) *shm.Region {
	t.Helper()
	r, err := shm.Create(filepath.Join(t.TempDir(), "app"), shm.Layout{NCPUs: 1, ProducerKind: abi.ProducerApp,
		ProducerName: "ring-test", HeartbeatPeriod: time.Hour, Sections: specs}, shm.CreateOptions{GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// Records read back as written; a reader that falls behind finds the
// overwritten ones gone, never torn; an oversized payload is counted lost.
func TestWriteRead(t *testing.T) {
	g, err := ring.Open(region(t, ring.Spec(4, 16)))
	if err != nil {
		t.Fatal(err)
	}
	if g.MaxPayload() != 16 {
		t.Fatalf("max payload %d", g.MaxPayload())
	}
	for i := range 6 {
		g.Write(uint32(i), uint64(1000+i), 3, bytes.Repeat([]byte{byte(i)}, i+1))
	}
	if g.Head() != 6 {
		t.Fatalf("head %d", g.Head())
	}
	for n := uint64(0); n < 6; n++ {
		rec, ok := g.Read(n)
		if n < 2 {
			if ok {
				t.Errorf("record %d survived 4 newer ones in a ring of 4", n)
			}
			continue
		}
		if !ok || rec.Seq != n || rec.Type != uint32(n) || rec.TimeNs != 1000+n || rec.CPU != 3 ||
			!bytes.Equal(rec.Payload, bytes.Repeat([]byte{byte(n)}, int(n)+1)) {
			t.Errorf("record %d: %+v %v", n, rec, ok)
		}
	}
	if _, ok := g.Read(6); ok {
		t.Error("a record never written reads")
	}
	g.Write(9, 0, 0, make([]byte, 17))
	if g.Lost() != 1 || g.Head() != 6 {
		t.Errorf("oversized payload: lost %d head %d", g.Lost(), g.Head())
	}
}

func TestOpenRefuses(t *testing.T) {
	if _, err := ring.Open(region(t, shm.TextSpec(abi.SecNameInfo, "x"))); !errors.Is(err, ring.ErrNoRing) {
		t.Errorf("no trace section: %v", err)
	}
	// A trace section of another kind is no ring.
	if _, err := ring.Open(region(t, shm.TextSpec(abi.SecNameTrace, "x"))); !errors.Is(err, ring.ErrNoRing) {
		t.Errorf("text trace section: %v", err)
	}
}
