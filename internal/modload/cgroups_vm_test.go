package modload

// The module's per-cgroup rows (kmod/kushm_cgroups.c), in the qemu guest.

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/cgroup2"
	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/tools/cgwork"
	"github.com/kushm/kushm/tools/vmtest"
	"github.com/kushm/kushm/userside/client"
)

func cgroupRow(t *testing.T, c *client.Client, id uint64) (client.Cgroup, bool) {
	t.Helper()
	rows, err := c.Cgroups(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.ID == id {
			return r, true
		}
	}
	return client.Cgroup{}, false
}

// waitRow polls until cgroup id has a row satisfying ok (the module
// inserts rows from its sampling work and charges at each switch).
func waitRow(t *testing.T, c *client.Client, id uint64, ok func(client.Cgroup) bool) (client.Cgroup, bool) {
	t.Helper()
	var g client.Cgroup
	var found bool
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		g, found = cgroupRow(t, c, id)
		if found && ok(g) {
			return g, true
		}
	}
	return g, found
}

func mkCgroup(t *testing.T, mnt, name string) (string, uint64) {
	t.Helper()
	dir := filepath.Join(mnt, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	id, err := cgroup2.ID(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, id
}

// TestVMCgroups: known work in fresh cgroups is charged to each; the
// cgroups' sum of context switches matches the per-CPU counter; a moved
// process's later counts go to its new cgroup; a removed cgroup's row is
// freed.
func TestVMCgroups(t *testing.T) {
	vmtest.Require(t)
	mnt, err := cgwork.Mount2()
	if err != nil {
		t.Fatal(err)
	}
	load(t, map[string]string{"interval_ms": "20"})
	open(t, devPath, shm.Options{})
	c, err := client.Open(client.Options{Path: devPath})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dirA, idA := mkCgroup(t, mnt, "kushm-vm-a")
	dirB, idB := mkCgroup(t, mnt, "kushm-vm-b")

	// A process waits in each cgroup until the module has its row (the
	// counts of a cgroup's first switches go to the pending row), then
	// does its work.
	works := map[uint64]cgwork.Spec{
		idA: {Pages: 2000, PingPongs: 300, Spin: 30 * time.Millisecond},
		idB: {Pages: 500, PingPongs: 800, Spin: 10 * time.Millisecond},
	}
	dirs := map[uint64]string{idA: dirA, idB: dirB}
	before := map[uint64]client.Cgroup{}
	for id, w := range works {
		pr, err := cgwork.StartWaiting(dirs[id], w)
		if err != nil {
			t.Fatal(err)
		}
		g, ok := waitRow(t, c, id, func(client.Cgroup) bool { return true })
		if !ok {
			pr.Go()
			pr.Wait()
			t.Fatalf("cgroup %d: no row while a process waits in it", id)
		}
		before[id] = g
		if err := pr.Go(); err != nil {
			t.Fatal(err)
		}
		if err := pr.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	for id, w := range works {
		g, _ := waitRow(t, c, id, func(g client.Cgroup) bool {
			d := g.Sub(before[id])
			return d.Counters[pmu.SW_PAGE_FAULTS] >= uint64(w.Pages) && d.Counters[pmu.SW_CONTEXT_SWITCHES] >= uint64(w.PingPongs)
		})
		d := g.Sub(before[id])
		pf, sw, rt := d.Counters[pmu.SW_PAGE_FAULTS], d.Counters[pmu.SW_CONTEXT_SWITCHES], d.Counters[abi.ProcCounterRuntime]
		t.Logf("cgroup %d: %d faults, %d switches, %v on CPU (work %v)", id, pf, sw, time.Duration(rt), w)
		if pf < uint64(w.Pages) || sw < uint64(w.PingPongs) || rt < uint64(w.Spin) {
			t.Errorf("cgroup %d charged less than its work %v", id, w)
		}
		if !g.Has(int(pmu.SW_PAGE_FAULTS)) || !g.Has(abi.ProcCounterRuntime) {
			t.Errorf("cgroup %d: valid %#x", id, g.Valid)
		}
	}

	// The cgroups' sum (idle and pending rows included) against the
	// per-CPU context-switch counter over the same time. Slack: the
	// module samples the CPU rows every 20 ms while cgroups are charged
	// at each switch.
	sums := func() (cg, cpu uint64) {
		// The CPU rows are a sample the module's work took (every 20
		// ms, later on a loaded host): wait for a sample taken after
		// now, then read both.
		s0, err := c.SamplePMU()
		if err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			s1, err := c.SamplePMU()
			if err == nil && s1.Rows[0].TimeNs != s0.Rows[0].TimeNs {
				break
			}
		}
		rows, err := c.Cgroups(nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			cg += r.Counters[pmu.SW_CONTEXT_SWITCHES]
		}
		s, err := c.SamplePMU()
		if err != nil {
			t.Fatal(err)
		}
		for i := range s.Rows {
			if s.Rows[i].Has(int(pmu.SW_CONTEXT_SWITCHES)) {
				cpu += s.Rows[i].Vals[pmu.SW_CONTEXT_SWITCHES]
			}
		}
		return
	}
	time.Sleep(100 * time.Millisecond) // the previous work's switches sampled
	cg0, cpu0 := sums()
	if err := cgwork.Run(dirB, cgwork.Spec{PingPongs: 2000}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	cg1, cpu1 := sums()
	dcg, dcpu := cg1-cg0, cpu1-cpu0
	slack := dcpu/10 + 200
	t.Logf("context switches over the interval: cgroups %d, CPUs %d", dcg, dcpu)
	if dcpu > 0 && (dcg+slack < dcpu || dcg > dcpu+slack) {
		t.Errorf("cgroups' sum %d vs per-CPU total %d (slack %d)", dcg, dcpu, slack)
	}

	// Moving a process moves its later counts.
	a0, _ := cgroupRow(t, c, idA)
	b0, _ := cgroupRow(t, c, idB)
	pr, err := cgwork.StartWaiting(dirA, cgwork.Spec{Pages: 1500})
	if err != nil {
		t.Fatal(err)
	}
	if err := cgwork.Move(dirB, pr.Cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	pr.Go()
	pr.Wait()
	b1, _ := waitRow(t, c, idB, func(g client.Cgroup) bool { return g.Sub(b0).Counters[pmu.SW_PAGE_FAULTS] >= 1500 })
	a1, _ := cgroupRow(t, c, idA)
	da, db := a1.Sub(a0).Counters[pmu.SW_PAGE_FAULTS], b1.Sub(b0).Counters[pmu.SW_PAGE_FAULTS]
	t.Logf("after the move: %d faults in A, %d in B", da, db)
	if db < 1500 || da >= 1500 {
		t.Errorf("moved process: %d faults charged to A, %d to B", da, db)
	}

	// Removing a cgroup frees its row.
	if err := os.Remove(dirA); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, ok := cgroupRow(t, c, idA); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("removed cgroup's row still there")
		}
	}
}

// TestVMCgroupsChurn: 1,000 cgroups created and removed, a process in
// each, in batches larger than the table, while a reader reads: the
// charges that found no row go to the pending row, refused inserts are
// counted, every row is freed. A kernel warning fails the run (harness).
func TestVMCgroupsChurn(t *testing.T) {
	vmtest.Require(t)
	mnt, err := cgwork.Mount2()
	if err != nil {
		t.Fatal(err)
	}
	const capacity, total, batch = 64, 1000, 100
	load(t, map[string]string{"interval_ms": "20", "cgroups_capacity": fmt.Sprint(capacity)})
	open(t, devPath, shm.Options{})
	c, err := client.Open(client.Options{Path: devPath})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			rows, err := c.Cgroups(nil)
			if err != nil {
				done <- err
				return
			}
			if len(rows) > capacity {
				done <- fmt.Errorf("%d rows in a table of %d", len(rows), capacity)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	for n := 0; n < total; n += batch {
		var dirs []string
		for i := n; i < n+batch; i++ {
			dir := filepath.Join(mnt, fmt.Sprintf("kushm-vm-churn-%d", i))
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			dirs = append(dirs, dir)
			if err := cgwork.RunTrue(dir); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(50 * time.Millisecond) // let the work insert rows
		for _, d := range dirs {
			if err := os.Remove(d); err != nil {
				t.Fatal(err)
			}
		}
	}
	var st rcuhash.Stats
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ts, err := c.CgroupTableStats()
		if err != nil {
			t.Fatal(err)
		}
		st = ts
		if ts.Count <= 4 || time.Now().After(deadline) {
			break
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("reader: %v", err)
	}
	pend, _ := cgroupRow(t, c, abi.CgroupKeyOverflow)
	t.Logf("table %+v; pending row: %d switches", st, pend.Counters[pmu.SW_CONTEXT_SWITCHES])
	if st.Count > 4 {
		t.Errorf("leak: %d rows after removing every cgroup", st.Count)
	}
	if st.InsertFull == 0 {
		t.Errorf("batches of %d cgroups in a table of %d: no refused insert counted", batch, capacity)
	}
	if pend.Counters[pmu.SW_CONTEXT_SWITCHES] == 0 {
		t.Error("no charge went to the pending row")
	}
}
