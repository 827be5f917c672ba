package shm_test

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/sys"
	"github.com/kushm/kushm/shm"
)

func layout() shm.Layout {
	return shm.Layout{
		NCPUs: 2, ProducerKind: abi.ProducerDaemon, ProducerName: "test", HeartbeatPeriod: 100 * time.Millisecond,
		Sections: []shm.SectionSpec{
			atomicarr.Spec("pmu", 2, 3, []shm.ColumnSpec{{Name: "a", Unit: "count"}, {Name: "b", Unit: "ns"}}),
			shm.ControlSpec(),
			shm.TextSpec("info", "x: not available on this machine, because test\n"),
		},
	}
}

func create(t *testing.T) (string, *shm.Region) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "region")
	r, err := shm.Create(path, layout(), shm.CreateOptions{GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return path, r
}

func TestCreateOpen(t *testing.T) {
	path, w := create(t)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Fatalf("region mode %v, want 0640", st.Mode().Perm())
	}
	if st, err := os.Stat(path + ".ctl"); err != nil || st.Mode().Perm() != 0o660 {
		t.Fatalf("control file: %v %v", st, err)
	}
	r, err := shm.Open(path, shm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h := r.Header()
	if h.NCPUs != 2 || h.ProducerKind != abi.ProducerDaemon || h.ProducerName != "test" || h.State != abi.StateRunning {
		t.Fatalf("header %+v", h)
	}
	names := []string{}
	for _, s := range r.Sections() {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, ","); got != "schema,pmu,control,info" {
		t.Fatalf("sections %s", got)
	}
	pmu, _ := r.Section("pmu")
	if len(pmu.Columns) != 2 || pmu.Columns[1].Name != "b" || pmu.Columns[1].Unit != "ns" || pmu.Columns[1].Offset != 40 {
		t.Fatalf("columns %+v", pmu.Columns)
	}
	ctl, _ := r.Section("control")
	if !ctl.External() {
		t.Fatal("control section of a file region must be external")
	}
	b, err := r.Bytes(ctl)
	if err != nil || binary.LittleEndian.Uint32(b) != abi.ControlMagic {
		t.Fatalf("control bytes: %v", err)
	}
	if r.Writable(ctl) {
		t.Fatal("control writable without WritableControl")
	}
	// The writer's updates are visible to the reader.
	wa, _ := atomicarr.Open(w, "pmu")
	ra, _ := atomicarr.Open(r, "pmu")
	if err := wa.Update(1, 5, 0b11, []uint64{7, 8}); err != nil {
		t.Fatal(err)
	}
	var snap atomicarr.Snapshot
	if err := ra.Snapshot(1, &snap); err != nil || snap.Vals[0] != 7 || snap.Vals[1] != 8 || !snap.Has(1) || snap.Has(2) {
		t.Fatalf("snapshot %+v %v", snap, err)
	}
	if err := ra.Update(0, 0, 0, nil); !errors.Is(err, shm.ErrReadOnly) {
		t.Fatalf("reader update: %v", err)
	}
}

func TestWritableControl(t *testing.T) {
	path, _ := create(t)
	r, err := shm.Open(path, shm.Options{WritableControl: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctl, _ := r.Section("control")
	b, _ := r.Bytes(ctl)
	binary.LittleEndian.PutUint32(b[8:], 20000)
	r2, err := shm.Open(path, shm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	b2, _ := r2.Bytes(ctl)
	if binary.LittleEndian.Uint32(b2[8:]) != 20000 {
		t.Fatal("control write not shared")
	}
}

func TestStale(t *testing.T) {
	path, w := create(t)
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := shm.Open(path, shm.Options{}); !errors.Is(err, shm.ErrStaleProducer) || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("stopped producer: %v", err)
	}
	r, err := shm.Open(path, shm.Options{AllowStale: true})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
}

// A producer that lengthens its heartbeat period after a reader opened
// the region (the module does when a user raises interval_us through
// control) is judged by the new period, not by the one read at open.
func TestLivenessFollowsPeriod(t *testing.T) {
	path, _ := create(t)
	r, err := shm.Open(path, shm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	put := func(off uintptr, v uint64) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], v)
		if _, err := f.WriteAt(b[:], int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	put(abi.HeaderPeriodOff, uint64(10*time.Second))
	put(abi.HeaderHeartbeatOff, sys.MonotonicNs()-uint64(5*time.Second))
	if st := r.Liveness(); st.Stale || st.Limit != 30*time.Second {
		t.Fatalf("heartbeat 5 s old, period 10 s: %+v", st)
	}
	put(abi.HeaderPeriodOff, uint64(100*time.Millisecond))
	if st := r.Liveness(); !st.Stale {
		t.Fatalf("heartbeat 5 s old, period 100 ms: %+v", st)
	}
}

func TestNoRegionAndPathTaken(t *testing.T) {
	dir := t.TempDir()
	_, err := shm.Open(filepath.Join(dir, "none"), shm.Options{})
	if !errors.Is(err, shm.ErrNoRegion) || !strings.Contains(err.Error(), "kushm serve") {
		t.Fatalf("missing region: %v", err)
	}
	other := filepath.Join(dir, "other")
	os.WriteFile(other, []byte("hello, not a region"), 0o600)
	if _, err := shm.Create(other, layout(), shm.CreateOptions{GID: -1}); !errors.Is(err, shm.ErrExists) {
		t.Fatalf("create over another file: %v", err)
	}
	if _, err := shm.Open(other, shm.Options{}); err == nil {
		t.Fatal("opened a non-region")
	}
	if _, err := shm.Create(filepath.Join(dir, "r"), layout(), shm.CreateOptions{Mode: 0o666, GID: -1}); err == nil {
		t.Fatal("world-writable region accepted")
	}
}

func TestAdopt(t *testing.T) {
	path, w := create(t)
	wa, _ := atomicarr.Open(w, "pmu")
	wa.Update(0, 1, 1, []uint64{42})
	gen := w.Header().Generation
	w.Close()
	a, err := shm.Adopt(path, layout(), shm.CreateOptions{GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Header().Generation != gen+1 {
		t.Fatal("generation not bumped")
	}
	aa, _ := atomicarr.Open(a, "pmu")
	if v, _ := aa.Load(0, 0); v != 42 {
		t.Fatalf("adopted data lost: %d", v)
	}
	l := layout()
	l.NCPUs = 3
	if _, err := shm.Adopt(path, l, shm.CreateOptions{GID: -1}); err == nil {
		t.Fatal("adopted a region of another layout")
	}
}

func TestABIMismatch(t *testing.T) {
	path, _ := create(t)
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	f.WriteAt([]byte{2, 0}, 8)
	f.Close()
	_, err := shm.Open(path, shm.Options{})
	if !errors.Is(err, shm.ErrABIMismatch) || !strings.Contains(err.Error(), "ABI 2.") {
		t.Fatalf("major 2: %v", err)
	}
}

func TestTruncated(t *testing.T) {
	path, _ := create(t)
	os.Truncate(path, 8192)
	if _, err := shm.Open(path, shm.Options{}); !errors.Is(err, shm.ErrTruncated) {
		t.Fatalf("truncated: %v", err)
	}
}

func TestMemfd(t *testing.T) {
	w, err := shm.CreateMemfd("kushm-test", layout())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Fd() < 0 {
		t.Fatal("no fd")
	}
	// A reader in another process would open /proc/<pid>/fd/<n>.
	r, err := shm.Open(w.Path(), shm.Options{WritableControl: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctl, _ := r.Section("control")
	if ctl.External() || !r.Writable(ctl) {
		t.Fatal("memfd control must be inline and writable here")
	}
	wa, _ := atomicarr.Open(w, "pmu")
	ra, _ := atomicarr.Open(r, "pmu")
	wa.Update(0, 1, 1, []uint64{99})
	if v, _ := ra.Load(0, 0); v != 99 {
		t.Fatalf("read %d", v)
	}
	// Sealed: the region cannot shrink under a reader (no SIGBUS).
	if err := os.Truncate(w.Path(), 4096); err == nil {
		t.Fatal("memfd region could be truncated")
	}
}
