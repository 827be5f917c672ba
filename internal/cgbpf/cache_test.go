// SPDX-License-Identifier: Apache-2.0

package cgbpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/kushm/kushm/internal/cgroup2"
	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/tools/cgwork"
	"github.com/kushm/kushm/tools/vmtest"
)

// cacheTest is one test's Counter and cgroups.
type cacheTest struct {
	t      *testing.T
	c      *Counter
	cg     *cgwork.Cgroups
	mnt    string
	ncpus  int
	cpu    int // the CPU pinned work runs on
	online []int
	other  string // helper's cgroup
	n      int
}

func newCacheTest(t *testing.T) *cacheTest {
	t.Helper()
	cg := cgwork.NewCgroups(t)
	ncpus, err := possible()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(Config{NCPUs: ncpus, Capacity: 1024})
	if err != nil {
		t.Skipf("BPF not available here: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	online, err := pmu.OnlineCPUs("")
	if err != nil || len(online) == 0 {
		t.Fatalf("online CPUs: %v %v", online, err)
	}
	return &cacheTest{t: t, c: c, cg: cg, mnt: cg.Mount, ncpus: ncpus, cpu: online[len(online)-1], online: online}
}

// mkdir creates a fresh cgroup, removed at the end of the test if the
// test did not remove it.
func (ct *cacheTest) mkdir() (string, uint64) {
	ct.t.Helper()
	ct.n++
	return ct.cg.Mkdir(fmt.Sprintf("kushm-cgcache-%d-%d", os.Getpid(), ct.n))
}

// state is every CPU's program state, copied once.
func (ct *cacheTest) state() []cpuLast {
	ct.t.Helper()
	var s []cpuLast
	if err := ct.c.objs.Last.Lookup(uint32(0), &s); err != nil {
		ct.t.Fatal(err)
	}
	return s
}

// hashRow is cgroup id's hash row alone (no pending part); ok false
// when it has none.
func (ct *cacheTest) hashRow(id uint64) ([]Stat, bool) {
	ct.t.Helper()
	var per []Stat
	err := ct.c.objs.Cgstats.Lookup(id, &per)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil, false
	}
	if err != nil {
		ct.t.Fatal(err)
	}
	return per, true
}

// read is one Read: the rows it reported.
func (ct *cacheTest) read() map[uint64][]Stat {
	ct.t.Helper()
	rows := map[uint64][]Stat{}
	if err := ct.c.Read(func(id uint64, per []Stat) {
		if _, dup := rows[id]; dup {
			ct.t.Errorf("row %d reported twice in one read", id)
		}
		rows[id] = append([]Stat(nil), per...)
	}); err != nil {
		ct.t.Fatal(err)
	}
	return rows
}

// pinProcess sets the CPU affinity of every thread of this process to
// cpu alone (threads started meanwhile inherit it from their creator);
// restore gives every thread the process's former affinity back.
func pinProcess(t *testing.T, cpu int) (restore func()) {
	t.Helper()
	var old, one [16]uint64 // 1024 CPUs
	affinity := func(nr uintptr, tid int, m *[16]uint64) error {
		_, _, e := syscall.RawSyscall(nr, uintptr(tid), unsafe.Sizeof(*m), uintptr(unsafe.Pointer(m)))
		if e != 0 {
			return e
		}
		return nil
	}
	if err := affinity(syscall.SYS_SCHED_GETAFFINITY, os.Getpid(), &old); err != nil {
		t.Fatalf("process affinity: %v", err)
	}
	one[cpu/64] = 1 << (cpu % 64)
	each := func(m *[16]uint64) {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if tid, err := strconv.Atoi(e.Name()); err == nil {
				_ = affinity(syscall.SYS_SCHED_SETAFFINITY, tid, m) // a thread may be gone
			}
		}
	}
	each(&one)
	return func() { each(&old) }
}

// dropped sums the switches dropped on every CPU.
func (ct *cacheTest) dropped() (n uint64) {
	for _, l := range ct.state() {
		n += l.Dropped
	}
	return n
}

// holds says whether l holds cgroup id pending, and its switches there.
func holds(l cpuLast, id uint64) bool {
	for _, pid := range l.PendId {
		if pid == id {
			return true
		}
	}
	return false
}

// helper is a cgroup of the test whose only task is flushOn's work.
func (ct *cacheTest) helper() string {
	if ct.other == "" {
		ct.other, _ = ct.mkdir()
	}
	return ct.other
}

// flushOn makes switches out of two other cgroups on cpu until cpu holds
// no pending part of cgroup id (a flush moved it), or fails after a
// deadline.
func (ct *cacheTest) flushOn(cpu int, id uint64) {
	ct.t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	unpin, err := pmu.PinToCPU(cpu)
	if err != nil {
		ct.t.Fatal(err)
	}
	defer unpin()
	deadline := time.Now().Add(30 * time.Second)
	for holds(ct.state()[cpu], id) {
		if time.Now().After(deadline) {
			ct.t.Fatalf("cpu %d still holds cgroup %d pending after 30 s of switches out of two other cgroups", cpu, id)
		}
		// Two other cgroups' switches there: the helper cgroup's
		// work, then this test's own (a cgroup stays pending until a
		// switch out of a third one).
		if err := cgwork.Run(ct.helper(), cgwork.Spec{PingPongs: 5, Pin: cpu + 1}); err != nil {
			ct.t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPendingCharged: a ping-pong pinned to one CPU inside one cgroup
// makes every one of its switches out of that cgroup, so they go to the
// CPU's pending part without a flush; Read reports them all at once, and
// a switch out of another cgroup moves them all to the hash row.
func TestPendingCharged(t *testing.T) {
	ct := newCacheTest(t)
	dir, id := ct.mkdir()
	const pingpongs, pages = 3000, 1000
	if err := cgwork.Run(dir, cgwork.Spec{Pages: pages, PingPongs: pingpongs, Pin: ct.cpu + 1}); err != nil {
		t.Fatal(err)
	}
	pendingNow := holds(ct.state()[ct.cpu], id)
	rows := ct.read()
	per, ok := rows[id]
	if !ok {
		t.Fatalf("cgroup %d not reported", id)
	}
	// On the pinned CPU: two switches per round trip, every fault of
	// the work (the work's start and exit add a few more).
	s := per[ct.cpu]
	sw, flt := s.Counter[pmu.SW_CONTEXT_SWITCHES], s.Counter[pmu.SW_PAGE_FAULTS]
	t.Logf("cpu %d: %d switches, %d faults (pending at the read: %v)", ct.cpu, sw, flt, pendingNow)
	if sw < 2*pingpongs || flt < pages {
		t.Fatalf("cpu %d charged %d switches, %d faults; the work made at least %d, %d", ct.cpu, sw, flt, 2*pingpongs, pages)
	}
	// Move the pending part: the hash row alone now holds it all.
	ct.flushOn(ct.cpu, id)
	h, ok := ct.hashRow(id)
	if !ok {
		t.Fatalf("no hash row for cgroup %d after a flush", id)
	}
	if hs := h[ct.cpu]; hs.Counter[pmu.SW_CONTEXT_SWITCHES] < sw || hs.Counter[pmu.SW_PAGE_FAULTS] < flt {
		t.Fatalf("after the flush the hash row holds %d switches, %d faults; Read gave %d, %d before",
			hs.Counter[pmu.SW_CONTEXT_SWITCHES], hs.Counter[pmu.SW_PAGE_FAULTS], sw, flt)
	}
	st, err := ct.c.Stats()
	if err != nil || st.Flushes == 0 {
		t.Fatalf("stats %+v %v: no flush counted", st, err)
	}
	// Idle is a row of its own, from the per-CPU idle parts (a busy
	// machine may not have gone idle during the test: no count asked),
	// never above what the program holds after the read.
	idle, ok := ct.read()[Idle]
	after := ct.state()
	if !ok {
		t.Fatal("no idle row")
	}
	for cpu := range idle {
		if r, s := idle[cpu].Counter[pmu.SW_CONTEXT_SWITCHES], after[cpu].Idle.Counter[pmu.SW_CONTEXT_SWITCHES]; r > s {
			t.Errorf("idle row cpu %d: %d switches reported, %d in the program after", cpu, r, s)
		}
	}
}

// TestRemovedPendingNoRow: a cgroup removed while a CPU holds its counts
// pending. Read never reports it after Removed, its row is freed once the
// pending part is gone, and a flush after the removal does not re-create
// the row: when the row is missing at the flush, the pending part is
// dropped (counted).
func TestRemovedPendingNoRow(t *testing.T) {
	ct := newCacheTest(t)
	const pingpongs = 2000
	dropped := false
	// The dropping path needs the pending part to outlive the row: the
	// test deletes the row itself between the work and the removal, and
	// retries when another cgroup's switch on that CPU flushed the
	// pending part (and re-created the row) before the removal.
	// This process's threads stay off the work's CPU, so that the
	// test's own switches there do not flush the pending part first
	// (the work pins its own threads there).
	if len(ct.online) > 1 {
		restore := pinProcess(t, ct.online[0])
		defer restore()
	}
	attempt, deadline := 0, time.Now().Add(15*time.Second)
	for !dropped && attempt < 200 && time.Now().Before(deadline) {
		attempt++
		dir, id := ct.mkdir()
		if err := cgwork.Run(dir, cgwork.Spec{PingPongs: pingpongs, Pin: ct.cpu + 1}); err != nil {
			t.Fatal(err)
		}
		if err := ct.c.Forget(id); err != nil {
			t.Fatal(err)
		}
		dropsBefore := ct.dropped()
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		// The rmdir tracepoint ran inside rmdir(2): the id is dead now,
		// and no flush re-creates its row. A row now means a flush
		// between the Forget and the removal (this attempt then does
		// not test the drop).
		_, rowBack := ct.hashRow(id)
		// The work's other threads (the Go runtime's) ran on other
		// CPUs: any CPU may hold its pending part.
		held, pend := false, uint64(0)
		for _, l := range ct.state() {
			for k, pid := range l.PendId {
				if pid == id {
					held, pend = true, pend+l.Pend[k].Counter[pmu.SW_CONTEXT_SWITCHES]
				}
			}
		}
		found := false
		for _, r := range ct.c.Removed() {
			found = found || r == id
		}
		if !found {
			t.Fatalf("removal of cgroup %d not reported", id)
		}
		if rows := ct.read(); rows[id] != nil {
			t.Fatalf("removed cgroup %d reported", id)
		}
		for _, cpu := range ct.online {
			ct.flushOn(cpu, id)
		}
		d := ct.dropped() - dropsBefore
		t.Logf("attempt %d: cgroup %d: row after removal %v, pending seen %v (%d switches), dropped %d", attempt, id, rowBack, held, pend, d)
		if held && !rowBack && d < pend {
			t.Errorf("dropped %d switches, the pending part held %d", d, pend)
		}
		dropped = !rowBack && d > 0
		// Whatever the path: no row left, never reported again, the
		// dead entry freed.
		until := time.Now().Add(10 * time.Second)
		for {
			rows := ct.read()
			if rows[id] != nil {
				t.Fatalf("removed cgroup %d reported", id)
			}
			_, row := ct.hashRow(id)
			var v uint64
			deadErr := ct.c.objs.Dead.Lookup(id, &v)
			if !row && errors.Is(deadErr, ebpf.ErrKeyNotExist) {
				break
			}
			if time.Now().After(until) {
				t.Fatalf("removed cgroup %d: row %v, dead entry %v after 10 s", id, row, deadErr)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if !dropped {
		// Every attempt checked the removal's outcome above; only the
		// drop path itself was not reached: another task's switch on
		// the work's CPU flushed the pending part before the removal
		// every time (a busy machine; nothing here can keep a CPU to
		// itself).
		t.Skipf("%d attempts: the pending part never outlived the removal (the drop path was not reached; the removal checks passed)", attempt)
	}
}

// TestReadMonotonic reads while three cgroups ping-pong on one CPU (two
// pending slots per CPU: a flush at most switches there, racing the
// reads) and other cgroups come
// and go: every reported counter is at least what was reported before for
// its row and CPU, a removed cgroup is never reported again, and the
// rows never hold more switches than the program saw (no count is read
// twice).
func TestReadMonotonic(t *testing.T) {
	ct := newCacheTest(t)
	dirA, idA := ct.mkdir()
	dirB, idB := ct.mkdir()
	dirC, idC := ct.mkdir()
	pingpongs := 20000
	if vmtest.InGuest() {
		pingpongs = 3000 // qemu TCG: about ten times slower
	}
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	stop := make(chan struct{})
	for _, d := range []string{dirA, dirB, dirC} {
		wg.Add(1)
		go func(d string) {
			defer wg.Done()
			errc <- cgwork.Run(d, cgwork.Spec{PingPongs: pingpongs, Pin: ct.cpu + 1})
		}(d)
	}
	// Churn: short-lived cgroups, removed while the reads go on.
	churned := make(chan []uint64, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ids []uint64
		defer func() { churned <- ids }()
		for i := 0; ; i++ {
			select {
			case <-stop:
				errc <- nil
				return
			default:
			}
			dir := filepath.Join(ct.mnt, "kushm-cgcache-churn-"+strconv.Itoa(os.Getpid())+"-"+strconv.Itoa(i))
			if err := os.Mkdir(dir, 0o755); err != nil {
				errc <- err
				return
			}
			id, _ := cgroup2.ID(dir)
			ids = append(ids, id)
			err := cgwork.Run(dir, cgwork.Spec{PingPongs: 50, Pin: ct.cpu + 1})
			if rerr := os.Remove(dir); err == nil {
				err = rerr
			}
			if err != nil {
				errc <- err
				return
			}
		}
	}()
	prev := map[uint64][]Stat{}
	removed := map[uint64]bool{}
	reads := 0
	deadline := time.Now().Add(60 * time.Second)
	pingDone := 0
	for pingDone < 3 && time.Now().Before(deadline) {
		select {
		case err := <-errc:
			if err != nil {
				t.Fatal(err)
			}
			pingDone++
		default:
		}
		for _, id := range ct.c.Removed() {
			removed[id] = true
		}
		rows := ct.read()
		st, err := ct.c.Stats()
		if err != nil {
			t.Fatal(err)
		}
		reads++
		var sum uint64
		for id, per := range rows {
			if removed[id] {
				t.Fatalf("read %d: removed cgroup %d reported", reads, id)
			}
			for cpu := range per {
				sum += per[cpu].Counter[pmu.SW_CONTEXT_SWITCHES]
				if p, ok := prev[id]; ok {
					for i, v := range per[cpu].Counter {
						if v < p[cpu].Counter[i] {
							t.Fatalf("read %d: cgroup %d cpu %d counter %d went down %d -> %d", reads, id, cpu, i, p[cpu].Counter[i], v)
						}
					}
				}
			}
			prev[id] = per
		}
		// Every switch adds one to exactly one row (or to Dropped):
		// the rows read before the program's switch count can never
		// sum above it.
		if sum > st.Switches {
			t.Fatalf("read %d: rows hold %d switches, the program saw %d: a count was read twice", reads, sum, st.Switches)
		}
	}
	close(stop)
	wg.Wait()
	if pingDone < 3 {
		t.Fatal("the ping-pongs did not finish in 60 s")
	}
	ids := <-churned
	// A last read, after the ping-pongs' end: all their switches are in.
	final := ct.read()
	for id, per := range final {
		if p, ok := prev[id]; ok {
			for cpu := range per {
				for i, v := range per[cpu].Counter {
					if v < p[cpu].Counter[i] {
						t.Fatalf("last read: cgroup %d cpu %d counter %d went down %d -> %d", id, cpu, i, p[cpu].Counter[i], v)
					}
				}
			}
		}
		prev[id] = per
	}
	st, _ := ct.c.Stats()
	t.Logf("%d reads, %d churned cgroups, stats %+v", reads, len(ids), st)
	for _, id := range []uint64{idA, idB, idC} {
		if prev[id] == nil || prev[id][ct.cpu].Counter[pmu.SW_CONTEXT_SWITCHES] < uint64(2*pingpongs) {
			t.Errorf("cgroup %d: %v switches on cpu %d, the ping-pong made at least %d", id, prev[id], ct.cpu, 2*pingpongs)
		}
	}
	// The reads must have raced flushes for the checks above to mean
	// anything. How many there are depends on the scheduler's time
	// slices, not on this program: 3,333 in a 6.12 guest, 823 in a 6.1
	// guest under load (a floor of 1,000 failed there), thousands on the
	// host (the reads: 219 and 651 in those guests). A hundred flushes
	// still put flushes between most reads in a guest, where the
	// ping-pongs are shortest.
	if st.Flushes < 100 {
		t.Errorf("%d flushes: the three cgroups did not alternate on cpu %d", st.Flushes, ct.cpu)
	}
}
