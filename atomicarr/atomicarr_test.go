package atomicarr_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/shm"
)

func region(t *testing.T, rows, slots int) (*shm.Region, *shm.Region) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "r")
	w, err := shm.Create(path, shm.Layout{NCPUs: rows, ProducerKind: abi.ProducerApp, ProducerName: "t",
		HeartbeatPeriod: time.Second, Sections: []shm.SectionSpec{atomicarr.Spec("a", rows, slots, nil)}}, shm.CreateOptions{GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	r, err := shm.Open(path, shm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return w, r
}

func TestLayoutNoFalseSharing(t *testing.T) {
	for slots := 1; slots <= 64; slots++ {
		s := atomicarr.RowStride(slots)
		if s%abi.CacheLine != 0 || s < abi.RowSlotsOff+8*slots {
			t.Fatalf("stride %d for %d slots", s, slots)
		}
	}
	w, _ := region(t, 4, 9)
	a, _ := atomicarr.Open(w, "a")
	if a.Rows() != 4 || a.Slots() != 9 {
		t.Fatalf("geometry %d x %d", a.Rows(), a.Slots())
	}
}

func TestUpdateSnapshotDelta(t *testing.T) {
	w, r := region(t, 2, 4)
	wa, _ := atomicarr.Open(w, "a")
	ra, _ := atomicarr.Open(r, "a")
	if err := wa.Update(0, 1_000_000_000, 0b0111, []uint64{10, 20, 30, 40}); err != nil {
		t.Fatal(err)
	}
	var s1, s2 atomicarr.Snapshot
	if err := ra.Snapshot(0, &s1); err != nil {
		t.Fatal(err)
	}
	// Slot 2 goes backwards (a reset): not a valid delta. Slot 3 was never
	// valid. Slot 1 becomes invalid.
	wa.Update(0, 1_500_000_000, 0b0101, []uint64{110, 25, 5, 50})
	ra.Snapshot(0, &s2)
	d := atomicarr.Diff(&s1, &s2)
	if d.Seconds != 0.5 {
		t.Fatalf("seconds %v", d.Seconds)
	}
	if rate, ok := d.Rate(0); !ok || rate != 200 {
		t.Fatalf("rate 0: %v %v", rate, ok)
	}
	for _, i := range []int{1, 2, 3, 4, -1} {
		if _, ok := d.Rate(i); ok {
			t.Errorf("slot %d: delta should be invalid", i)
		}
	}
	if v, ok := ra.Load(0, 0); !ok || v != 110 {
		t.Fatalf("load %d %v", v, ok)
	}
	if _, ok := ra.Load(2, 0); ok {
		t.Fatal("row out of range accepted")
	}
	if _, ok := ra.Load(0, 4); ok {
		t.Fatal("slot out of range accepted")
	}
	if err := ra.Snapshot(5, &s1); !errors.Is(err, shm.ErrNotFound) {
		t.Fatalf("bad row: %v", err)
	}
	if _, err := wa.Add(1, 3, 5); err != nil {
		t.Fatal(err)
	}
	if v, _ := ra.Load(1, 3); v != 5 {
		t.Fatalf("add: %d", v)
	}
	if err := ra.Store(0, 0, 1); !errors.Is(err, shm.ErrReadOnly) {
		t.Fatalf("store through a reader: %v", err)
	}
}

// TestDeadWriterRow: a writer that died between W1 and W5 leaves the row
// odd; snapshots of it fail with ErrRetry (bounded), other rows work.
func TestDeadWriterRow(t *testing.T) {
	w, r := region(t, 2, 2)
	wa, _ := atomicarr.Open(w, "a")
	sec, _ := w.Section("a")
	b, _ := w.Bytes(sec)
	b[0] = 1 // row 0 seq odd: "write in progress" forever
	wa.Update(1, 1, 1, []uint64{1})
	ra, _ := atomicarr.Open(r, "a")
	var s atomicarr.Snapshot
	if err := ra.Snapshot(0, &s); !errors.Is(err, shm.ErrRetry) {
		t.Fatalf("dead row: %v", err)
	}
	if err := ra.Snapshot(1, &s); err != nil {
		t.Fatalf("live row: %v", err)
	}
	// A producer adopting the region repairs it: consistent, every slot n/a.
	if n, err := wa.Repair(); err != nil || n != 1 {
		t.Fatalf("repair: %d rows, %v", n, err)
	}
	if err := ra.Snapshot(0, &s); err != nil || s.Valid != 0 {
		t.Fatalf("repaired row: valid %#x, %v", s.Valid, err)
	}
	if n, _ := wa.Repair(); n != 0 {
		t.Fatalf("second repair: %d rows", n)
	}
	b[0] = 3 // dead again
	// The next writer's update makes the row consistent again.
	wa.Update(0, 2, 1, []uint64{3})
	if err := ra.Snapshot(0, &s); err != nil || s.Vals[0] != 3 {
		t.Fatalf("row after a new update: %v %v", s.Vals, err)
	}
}

func TestOpenWrongKind(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r")
	w, err := shm.Create(path, shm.Layout{NCPUs: 1, ProducerKind: abi.ProducerApp, ProducerName: "t",
		HeartbeatPeriod: time.Second, Sections: []shm.SectionSpec{shm.TextSpec("a", "x")}}, shm.CreateOptions{GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := atomicarr.Open(w, "a"); !errors.Is(err, shm.ErrCorrupt) {
		t.Fatalf("text section as atomicarr: %v", err)
	}
	if _, err := atomicarr.Open(w, "nope"); !errors.Is(err, shm.ErrNoSection) {
		t.Fatalf("missing section: %v", err)
	}
}
