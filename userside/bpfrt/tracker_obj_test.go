package bpfrt

import (
	"bytes"
	"encoding/binary"
	"github.com/kushm/kushm/internal/sysstat"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
)

// TestTrackerObjectInUserspace runs the kernel syscall tracker's own BPF
// object (bpf/tracker.bpf.c, compiled for package tracker: tp_btf
// programs, an LRU hash, a per-CPU array, a ring buffer, the kushm
// kfuncs) in the userspace runtime: one source, both sides.
func TestTrackerObjectInUserspace(t *testing.T) {
	obj := "../../tracker/tracker_bpfel.o"
	if _, err := os.Stat(obj); err != nil {
		t.Skipf("tracker object absent: %v", err)
	}
	sys, err := rcuhash.Spec(abi.SecNameSyscalls, rcuhash.Geometry{Capacity: 64, NSlots: 1, ValueSize: 64}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := shm.Create(filepath.Join(t.TempDir(), "r"), shm.Layout{NCPUs: 1, ProducerKind: abi.ProducerApp, ProducerName: "bpfrt-test",
		HeartbeatPeriod: time.Hour, Sections: []shm.SectionSpec{sys, shm.ControlSpec()}}, shm.CreateOptions{GID: -1, InlineControl: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := rcuhash.OpenWriter(r, abi.SecNameSyscalls)
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewRegionKushm(r)
	if err != nil {
		t.Fatal(err)
	}
	k.SetSyscallWriter(w)
	col, err := LoadELF(obj, &Options{Kushm: k})
	if err != nil {
		t.Fatalf("the tracker's object is refused: %v", err)
	}
	enter, exit := col.Programs["sys_enter"], col.Programs["sys_exit"]
	if enter == nil || exit == nil {
		t.Fatalf("programs: %v", col.Programs)
	}
	const nr = 39
	syscall := func() {
		ctx := make([]byte, 16)
		binary.LittleEndian.PutUint64(ctx[8:], nr)
		if _, err := enter.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := exit.Run(make([]byte, 16)); err != nil {
			t.Fatal(err)
		}
	}
	events := col.Maps["events"].(*RingBufMap)
	for i := 0; i < 10; i++ {
		syscall()
	}
	if _, ok := events.Read(); ok {
		t.Fatal("an event during warm-up")
	}
	// an override of 1 ns makes every later sample an outlier.
	ctl, _ := r.Section(abi.SecNameControl)
	cb, _ := r.Bytes(ctl)
	binary.LittleEndian.PutUint64(cb[abi.ControlHeadSize+8*nr:], 1)
	syscall()
	ev, ok := events.Read()
	if !ok || len(ev) != 56 {
		t.Fatalf("no event (%d bytes)", len(ev))
	}
	if pid := binary.LittleEndian.Uint32(ev[24:]); pid != uint32(os.Getpid()) {
		t.Errorf("event pid %d", pid)
	}
	if got := binary.LittleEndian.Uint32(ev[32:]); got != nr {
		t.Errorf("event nr %d", got)
	}
	if th := binary.LittleEndian.Uint64(ev[16:]); th != 1 {
		t.Errorf("event threshold %d", th)
	}
	if comm := string(bytes.TrimRight(ev[40:56], "\x00")); comm != string(currentComm) {
		t.Errorf("event comm %q, want %q", comm, currentComm)
	}
	buf := make([]byte, 64)
	if _, err := k.TableLookup(abi.TableSyscalls, nr, buf); err != nil || sysstat.Decode(buf).Count != 11 {
		t.Fatalf("region: %v %+v", err, sysstat.Decode(buf))
	}
}

func TestRingBufMap(t *testing.T) {
	rb, err := NewRingBufMap(4096)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewRingBufMap(1000); err == nil {
		t.Fatal("size 1000 accepted")
	}
	next := 0
	for i := 0; i < 500; i++ {
		rec := rb.reserve(uint64(50 + i%60))
		if rec == nil {
			t.Fatalf("reserve %d failed", i)
		}
		rec[0] = byte(i)
		rb.commit(addrOf(rec)-addrOf(rb.data), i%3 == 2)
		for {
			got, ok := rb.Read()
			if !ok {
				break
			}
			for next%3 == 2 {
				next++
			}
			if got[0] != byte(next) || len(got) != 50+next%60 {
				t.Fatalf("record %d: got %d (%d bytes)", next, got[0], len(got))
			}
			next++
		}
	}
	// full: without reads, reservations stop.
	n := 0
	for rb.reserve(100) != nil {
		n++
	}
	if n == 0 || n > 4096/108 {
		t.Fatalf("%d reservations fit", n)
	}
	// a pending (busy) record blocks reading.
	if _, ok := rb.Read(); ok {
		t.Fatal("read a busy record")
	}
}
