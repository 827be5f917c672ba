package shm_test

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/shm"
)

// Hostile files: what another local user can do to a region's files
// (issue 11). Each case must end in a clean error or a correct result.

// pokeFile writes v at off of the file at path (as a hostile user would).
func pokeFile(t *testing.T, path string, off int64, v []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(v, off); err != nil {
		t.Fatal(err)
	}
}

func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
func u32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// openSoon opens path in a goroutine and fails the test if it has not
// returned within 2 s (a FIFO used to block open forever).
func openSoon(t *testing.T, path string, o shm.Options) (*shm.Region, error) {
	t.Helper()
	type res struct {
		r   *shm.Region
		err error
	}
	ch := make(chan res, 1)
	go func() { r, err := shm.Open(path, o); ch <- res{r, err} }()
	select {
	case x := <-ch:
		if x.r != nil {
			t.Cleanup(func() { x.r.Close() })
		}
		return x.r, x.err
	case <-time.After(2 * time.Second):
		t.Fatalf("open %s hangs", path)
	}
	return nil, nil
}

func TestOpenRefusesFileTypes(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o666); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	rpath, _ := create(t)
	if err := os.Symlink(rpath, link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{fifo, "is a FIFO"},
		{dir, "is a directory"},
		{link, "symbolic link"},
	} {
		_, err := openSoon(t, c.path, shm.Options{AllowStale: true})
		if !errors.Is(err, shm.ErrExists) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.path) {
			t.Errorf("open %s: %v, want ErrExists naming the file and %q", c.path, err, c.want)
		}
	}
}

func TestControlFileFIFOAndEmpty(t *testing.T) {
	path, _ := create(t)
	// An empty control file: the region stays readable, the control
	// section is missing with the reason; asked for writing, an error.
	if err := os.Truncate(path+".ctl", 0); err != nil {
		t.Fatal(err)
	}
	r, err := openSoon(t, path, shm.Options{})
	if err != nil {
		t.Fatalf("empty .ctl: %v", err)
	}
	s, _ := r.Section(abi.SecNameControl)
	if !s.Missing || !strings.Contains(s.MissingReason, "empty") {
		t.Fatalf("control section %+v, want missing because empty", s)
	}
	if _, err := r.Bytes(s); !errors.Is(err, shm.ErrNoSection) || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("bytes of the missing control section: %v", err)
	}
	if _, err := openSoon(t, path, shm.Options{WritableControl: true}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("writable open of an empty .ctl: %v", err)
	}
	// A FIFO in its place: no hang, missing.
	os.Remove(path + ".ctl")
	if err := syscall.Mkfifo(path+".ctl", 0o666); err != nil {
		t.Fatal(err)
	}
	r, err = openSoon(t, path, shm.Options{})
	if err != nil {
		t.Fatalf("fifo .ctl: %v", err)
	}
	if s, _ := r.Section(abi.SecNameControl); !s.Missing || !strings.Contains(s.MissingReason, "FIFO") {
		t.Fatalf("control section %+v, want missing because a FIFO", s)
	}
	if _, err := openSoon(t, path, shm.Options{WritableControl: true}); err == nil || !strings.Contains(err.Error(), "FIFO") {
		t.Fatalf("writable open of a FIFO .ctl: %v", err)
	}
}

func TestControlFileShort(t *testing.T) {
	path, _ := create(t)
	if err := os.Truncate(path+".ctl", 100); err != nil {
		t.Fatal(err)
	}
	// The section does not fit the file: missing, the region readable.
	r, err := openSoon(t, path, shm.Options{})
	if err != nil {
		t.Fatalf("short .ctl: %v", err)
	}
	if s, _ := r.Section(abi.SecNameControl); !s.Missing || !strings.Contains(s.MissingReason, "100 bytes") {
		t.Fatalf("control section %+v, want missing because of 100 bytes", s)
	}
	if _, err := openSoon(t, path, shm.Options{WritableControl: true}); !errors.Is(err, shm.ErrTruncated) {
		t.Fatalf("writable open of a short .ctl: %v", err)
	}
}

func TestOwnership(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	path, _ := create(t)
	const nobody = 65534
	// The .ctl of another user than the region's: missing.
	if err := os.Chown(path+".ctl", nobody, -1); err != nil {
		t.Fatal(err)
	}
	r, err := openSoon(t, path, shm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := r.Section(abi.SecNameControl); !s.Missing || !strings.Contains(s.MissingReason, "uid 65534") {
		t.Fatalf("control section %+v, want missing naming uid 65534", s)
	}
	// A region of another user: refused when discovered, with the owner.
	if err := os.Chown(path, nobody, -1); err != nil {
		t.Fatal(err)
	}
	_, err = openSoon(t, path, shm.Options{CheckOwner: true})
	if !errors.Is(err, shm.ErrUntrusted) || !strings.Contains(err.Error(), "uid 65534") || !strings.Contains(err.Error(), path) {
		t.Fatalf("planted region: %v", err)
	}
	if _, err := openSoon(t, path, shm.Options{CheckOwner: true, ProducerUIDs: []uint32{nobody}}); err != nil {
		t.Fatalf("configured producer uid: %v", err)
	}
	// A producer refuses to adopt a file it does not own.
	if _, err := shm.Adopt(path, layout(), shm.CreateOptions{GID: -1}); !errors.Is(err, shm.ErrUntrusted) {
		t.Fatalf("adopt another user's region: %v", err)
	}
}

func TestCreateOverSquatter(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := filepath.Join(t.TempDir(), "shm")
	if err := os.Mkdir(dir, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777|os.ModeSticky)
	path := filepath.Join(dir, "kushm")
	if err := syscall.Mkfifo(path, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path+".ctl", 0o666); err != nil {
		t.Fatal(err)
	}
	os.Lchown(path, 65534, 65534)
	os.Lchown(path+".ctl", 65534, 65534)
	// Root replaces a squatter's files in a shared sticky directory.
	w, err := shm.Create(path, layout(), shm.CreateOptions{GID: -1})
	if err != nil {
		t.Fatalf("create over a squatter: %v", err)
	}
	defer w.Close()
	if r, err := openSoon(t, path, shm.Options{CheckOwner: true}); err != nil {
		t.Fatal(err)
	} else if s, _ := r.Section(abi.SecNameControl); s.Missing {
		t.Fatalf("control missing: %s", s.MissingReason)
	}
	// Outside a shared directory, another user's file is never clobbered.
	other := filepath.Join(t.TempDir(), "kushm")
	os.WriteFile(other, []byte("precious"), 0o644)
	os.Chown(other, 65534, 65534)
	if _, err := shm.Create(other, layout(), shm.CreateOptions{GID: -1}); !errors.Is(err, shm.ErrExists) || !strings.Contains(err.Error(), "uid 65534") {
		t.Fatalf("create over another user's file: %v", err)
	}
}

func TestDuplicateControlSections(t *testing.T) {
	path, _ := create(t)
	r, err := shm.Open(path, shm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pmu, _ := r.Section("pmu")
	idx := pmu.Index
	r.Close()
	// Turn "pmu" into a second control section (one byte).
	pokeFile(t, path, abi.SectionTableOff+int64(idx)*abi.SectionEntrySize+16, u32(abi.SecControl))
	_, err = openSoon(t, path, shm.Options{WritableControl: true})
	if !errors.Is(err, shm.ErrCorrupt) || !strings.Contains(err.Error(), "second control section") {
		t.Fatalf("two control sections: %v", err)
	}
}

func TestShrunkWhileMapped(t *testing.T) {
	path, _ := create(t)
	r, err := shm.Open(path, shm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, _ := r.Section("info")
	b, err := r.Bytes(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Check(); err != nil {
		t.Fatalf("check before: %v", err)
	}
	if err := os.Truncate(path, abi.HeaderAreaSize); err != nil {
		t.Fatal(err)
	}
	if err := r.Check(); !errors.Is(err, shm.ErrChanged) || !strings.Contains(err.Error(), "shrank") {
		t.Fatalf("check after truncate: %v", err)
	}
	err = r.Guard(func() error {
		sink = b[0] + b[len(b)-1] // faults: the page is gone
		return nil
	})
	if !errors.Is(err, shm.ErrChanged) || !strings.Contains(err.Error(), path) {
		t.Fatalf("guarded read of a shrunk file: %v", err)
	}
}

var sink byte

func TestControlShrunkWhileMapped(t *testing.T) {
	path, _ := create(t)
	r, err := shm.Open(path, shm.Options{WritableControl: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, _ := r.Section(abi.SecNameControl)
	b, _ := r.Bytes(s)
	os.Truncate(path+".ctl", 0)
	err = shm.Guard(func() error { b[100] = 1; return nil })
	if !errors.Is(err, shm.ErrChanged) || !strings.Contains(err.Error(), ".ctl") {
		t.Fatalf("guarded write to a truncated .ctl: %v", err)
	}
	// Other panics go on.
	defer func() {
		if recover() == nil {
			t.Fatal("a non-fault panic was swallowed")
		}
	}()
	shm.Guard(func() error { panic("boom") })
}

func TestReplacedWhileMapped(t *testing.T) {
	path, _ := create(t)
	r, err := shm.Open(path, shm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w2, err := shm.Create(path, layout(), shm.CreateOptions{GID: -1}) // a restart renames a new file in
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if err := r.Check(); !errors.Is(err, shm.ErrChanged) || !strings.Contains(err.Error(), "replaced") {
		t.Fatalf("check after replacement: %v", err)
	}
}

func TestLivenessHostileHeader(t *testing.T) {
	path, w := create(t)
	w.Heartbeat()
	r, err := shm.Open(path, shm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	hb := r.Header().HeartbeatNs
	// One hour in the future: stale, not fresh.
	pokeFile(t, path, 48, u64(hb+uint64(time.Hour)))
	if st := r.Liveness(); !st.Stale || !strings.Contains(st.Reason, "future") {
		t.Fatalf("future heartbeat: %+v", st)
	}
	// A period of 2^62 ns must not overflow into "fresh" for an old
	// heartbeat, nor into a negative limit.
	pokeFile(t, path, 48, u64(1))
	pokeFile(t, path, 56, u64(1<<62))
	if st := r.Liveness(); !st.Stale || st.Limit <= 0 {
		t.Fatalf("period 2^62, heartbeat at boot: %+v", st)
	}
	pokeFile(t, path, 56, u64(^uint64(0)))
	if st := r.Liveness(); !st.Stale || st.Limit <= 0 {
		t.Fatalf("period 2^64-1: %+v", st)
	}
	// A fresh heartbeat with a pid that does not exist: dead.
	pokeFile(t, path, 56, u64(uint64(100*time.Millisecond)))
	w.Heartbeat()
	pokeFile(t, path, 36, u32(1<<22+1))
	if st := r.Liveness(); !st.Stale || !strings.Contains(st.Reason, "pid") {
		t.Fatalf("dead pid: %+v", st)
	}
	// The same pid recorded in another pid namespace: not this reader's
	// to check (the heartbeat, fresh, decides).
	ns := r.Header().ProducerPIDNS
	if ns == 0 {
		t.Fatal("the producer recorded no pid namespace")
	}
	pokeFile(t, path, 136, u64(ns+1))
	if st := r.Liveness(); st.Stale {
		t.Fatalf("a pid of another namespace judged here: %+v", st)
	}
	pokeFile(t, path, 136, u64(ns))
	pokeFile(t, path, 36, u32(uint32(os.Getpid())))
	if st := r.Liveness(); st.Stale {
		t.Fatalf("live producer: %+v", st)
	}
}

// BenchmarkGuard is the cost of guarding one pass of a reader's loop
// (contract 2 of doc.go: guard a pass, not each load).
func BenchmarkGuard(b *testing.B) {
	n := 0
	for b.Loop() {
		shm.Guard(func() error { n++; return nil })
	}
	if n == 0 {
		b.Fatal("not run")
	}
}

// TestFailedOpensLeakNoDescriptors: an open refused after the region and
// its .ctl were opened closes both.
func TestFailedOpensLeakNoDescriptors(t *testing.T) {
	path, _ := create(t)
	r, err := shm.Open(path, shm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pmu, _ := r.Section("pmu")
	idx := pmu.Index
	r.Close()
	pokeFile(t, path, abi.SectionTableOff+int64(idx)*abi.SectionEntrySize+20, u32(1<<7)) // unknown flag
	fds := func() int {
		d, _ := os.ReadDir("/proc/self/fd")
		return len(d)
	}
	before := fds()
	for i := 0; i < 100; i++ {
		if _, err := shm.Open(path, shm.Options{}); !errors.Is(err, shm.ErrCorrupt) {
			t.Fatalf("open: %v", err)
		}
	}
	if after := fds(); after > before+2 {
		t.Fatalf("%d descriptors before 100 refused opens, %d after", before, after)
	}
}
