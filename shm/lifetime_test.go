package shm_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/errs"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/ring"
	"github.com/kushm/kushm/shm"
)

// mappingAt returns the /proc/self/maps line of the mapping holding addr.
func mappingAt(t *testing.T, addr uintptr) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skip("no /proc/self/maps:", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		var lo, hi uintptr
		if _, err := fmt.Sscanf(line, "%x-%x", &lo, &hi); err == nil && lo <= addr && addr < hi {
			return line
		}
	}
	return ""
}

// Views used after Region.Close read zeros instead of faulting, the file
// is no longer mapped as soon as Close returns, and the address range is
// released once the region and its views are unreachable.
func TestViewsOutliveClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "region")
	hash, err := rcuhash.Spec("procs", rcuhash.Geometry{Capacity: 8, NSlots: 1, ValueSize: 8, DataSize: 8}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := layout()
	l.Sections = append(l.Sections, hash, ring.Spec(4, 16))
	w, err := shm.Create(path, l, shm.CreateOptions{GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	wa, _ := atomicarr.Open(w, "pmu")
	wa.Update(1, 1, 0b11, []uint64{7, 8})
	wt, err := rcuhash.OpenWriter(w, "procs")
	if err != nil {
		t.Fatal(err)
	}
	if err := wt.Insert(42, make([]byte, 8), []byte{9, 0, 0, 0, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}

	released := shm.Released()
	func() {
		r, err := shm.Open(path, shm.Options{})
		if err != nil {
			t.Fatal(err)
		}
		a, err := atomicarr.Open(r, "pmu")
		if err != nil {
			t.Fatal(err)
		}
		h, err := rcuhash.Open(r, "procs")
		if err != nil {
			t.Fatal(err)
		}
		g, err := ring.Open(r)
		if err != nil {
			t.Fatal(err)
		}
		val := make([]byte, 8)
		if v, _ := a.Load(1, 0); v != 7 || h.Lookup(42, val) != nil || val[0] != 9 {
			t.Fatalf("before Close: %d %v", v, val)
		}
		sec, _ := r.Section("pmu")
		mem, _ := r.Bytes(sec)
		addr := uintptr(unsafe.Pointer(&mem[0]))
		if m := mappingAt(t, addr); !strings.Contains(m, path) {
			t.Fatalf("the reader's mapping is %q, not of %s", m, path)
		}
		r.Close()
		r.Close() // twice: nothing more
		if !r.Closed() {
			t.Error("Closed false after Close")
		}
		if m := mappingAt(t, addr); m == "" || strings.Contains(m, path) {
			t.Errorf("after Close the reader's range is %q: want anonymous zero pages", m)
		}
		// Every view still reads, from zero pages: no fault, no data.
		var s atomicarr.Snapshot
		if v, ok := a.Load(1, 0); v != 0 || !ok || a.Valid(1) != 0 || a.Snapshot(1, &s) != nil || s.Valid != 0 {
			t.Errorf("atomicarr after Close: %d %v valid %#x snapshot %+v", v, ok, a.Valid(1), s)
		}
		if err := h.Lookup(42, val); err == nil {
			t.Error("rcuhash finds a key after Close")
		}
		if err := h.Read(42, nil, val); !errors.Is(err, shm.ErrClosed) || !errors.Is(err, errs.ErrClosed) {
			t.Errorf("rcuhash Read after Close: %v, want ErrClosed", err)
		}
		h.Range(func(*rcuhash.Entry) bool { t.Error("rcuhash ranges over a node after Close"); return true })
		if g.Head() != 0 {
			t.Errorf("ring head %d after Close", g.Head())
		}
		if _, ok := g.Read(0); ok {
			t.Error("ring record after Close")
		}
		h2 := r.Header() // the header reads zeros too
		if h2.HeartbeatNs != 0 {
			t.Errorf("heartbeat %d after Close", h2.HeartbeatNs)
		}
	}()
	// The writer's region closes too: its writable views write into
	// private memory after Close, without faulting.
	w.Close()
	if err := wa.Update(0, 1, 1, []uint64{1}); err != nil {
		t.Errorf("write after Close: %v", err)
	}
	if v, _ := wa.Load(0, 0); v != 1 {
		t.Errorf("private write after Close reads %d", v)
	}
	wa, wt = nil, nil
	deadline := time.Now().Add(5 * time.Second)
	for shm.Released() < released+2 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if got := shm.Released() - released; got < 2 {
		t.Errorf("%d address ranges released after the regions became unreachable, want ≥ 2", got)
	}
	if n := shm.RetireFailed(); n != 0 {
		t.Errorf("%d retirements failed", n)
	}
}
