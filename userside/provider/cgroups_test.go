package provider

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/tools/cgwork"
	"github.com/kushm/kushm/userside/client"
)

// newCgroupTest makes the test's fresh cgroups (removed at its end).
func newCgroupTest(t *testing.T) *cgwork.Cgroups { return cgwork.NewCgroups(t) }

func TestMain(m *testing.M) {
	cgwork.Main()
	os.Exit(m.Run())
}

func newCgroupProvider(t *testing.T, mode CgroupMode, extra func(*Config)) *Provider {
	cfg := Config{Root: "/", Cgroups: mode, Watch: Watch{None: true}, NoMSR: true, CgroupInterval: 10 * time.Millisecond}
	if extra != nil {
		extra(&cfg)
	}
	cfg.Path = filepath.Join(t.TempDir(), "kushm")
	cfg.Interval = 10 * time.Millisecond
	p, err := New(cfg)
	if err != nil {
		if mode == CgroupBPF && strings.Contains(err.Error(), "load cgroup counter") {
			t.Skipf("BPF not available: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	softwareOK(t, p)
	return p
}

// settledSample takes a complete sample right after this thread left
// its CPU. The BPF program charges a task's faults when it switches
// out, so the faults a running task made since it came in are in the
// per-CPU totals but in no cgroup yet; the test's own thread, after
// New (the program's load, the region's pages) or a sum of other work,
// can have hundreds. Blocking once in the kernel charges them before
// the sample, so both sides of a comparison see them.
func settledSample(t *testing.T, p *Provider) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ts := syscall.Timespec{Nsec: int64(time.Millisecond)}
	_ = syscall.Nanosleep(&ts, nil)
	if err := p.SampleAll(); err != nil {
		t.Fatal(err)
	}
}

// sampleUntil takes complete (settled) samples until cond holds, for at
// most 5 s (then returns: the caller's checks report what is missing).
func sampleUntil(t *testing.T, p *Provider, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		settledSample(t, p)
		if cond() || time.Now().After(deadline) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func cgroupByID(t *testing.T, c *client.Client, id uint64) (client.Cgroup, bool) {
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

func count(t *testing.T, g client.Cgroup, i int) uint64 {
	t.Helper()
	v, f, ok := g.Count(i)
	if !ok {
		t.Fatalf("cgroup %d: counter %d not available", g.ID, i)
	}
	if f != 1 {
		t.Errorf("cgroup %d: counter %d: fraction %v with software events", g.ID, i, f)
	}
	return v
}

// TestCgroupsBPF: known work in two fresh cgroups is charged to each,
// the cgroups' sum matches the per-CPU totals, moving a process moves its
// later counts, and removing a cgroup frees its row.
func TestCgroupsBPF(t *testing.T) {
	ct := newCgroupTest(t)
	p := newCgroupProvider(t, CgroupBPF, nil)
	c, err := client.Open(client.Options{Path: p.Path()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tag := strconv.Itoa(os.Getpid())
	dirA, idA := ct.Mkdir("kushm-test-a-" + tag)
	dirB, idB := ct.Mkdir("kushm-test-b-" + tag)

	settledSample(t, p)
	cpu0, err := c.SamplePMU()
	if err != nil {
		t.Fatal(err)
	}
	all0, err := c.Cgroups(nil)
	if err != nil {
		t.Fatal(err)
	}
	// A's thread also moves between two CPUs (sched_setaffinity) 300
	// times: at least 300 migrations, on a machine with 2 CPUs online.
	migrate := 0
	if cpus, err := pmu.OnlineCPUs(""); err == nil && len(cpus) >= 2 {
		migrate = 300
	}
	works := map[uint64]cgwork.Spec{
		idA: {Pages: 3000, PingPongs: 800, Spin: 40 * time.Millisecond, Migrations: migrate},
		idB: {Pages: 1000, PingPongs: 2000, Spin: 20 * time.Millisecond},
	}
	if err := cgwork.Run(dirA, works[idA]); err != nil {
		t.Fatal(err)
	}
	if err := cgwork.Run(dirB, works[idB]); err != nil {
		t.Fatal(err)
	}
	// A task's faults are charged when it leaves a CPU: wait(2) can
	// return before an exited worker's last switch out, and the last of
	// its work lands a moment later. Sample until both cgroups hold
	// their work (or a deadline; the checks below then say what is
	// missing).
	charged := func(id uint64) bool {
		g, ok := cgroupByID(t, c, id)
		if !ok {
			return false
		}
		w := works[id]
		f, _, _ := g.Count(int(pmu.SW_PAGE_FAULTS))
		sw, _, _ := g.Count(int(pmu.SW_CONTEXT_SWITCHES))
		rt, _, _ := g.Count(abi.ProcCounterRuntime)
		mg, _, _ := g.Count(int(pmu.SW_CPU_MIGRATIONS))
		return f >= uint64(w.Pages) && sw >= uint64(w.PingPongs) && rt >= uint64(w.Spin) && mg >= uint64(w.Migrations)
	}
	sampleUntil(t, p, func() bool { return charged(idA) && charged(idB) })
	cpu1, err := c.SamplePMU()
	if err != nil {
		t.Fatal(err)
	}
	all1, err := c.Cgroups(nil)
	if err != nil {
		t.Fatal(err)
	}
	for id, w := range works {
		g, ok := cgroupByID(t, c, id)
		if !ok {
			t.Fatalf("cgroup %d has no row", id)
		}
		faults, sw, rt := count(t, g, int(pmu.SW_PAGE_FAULTS)), count(t, g, int(pmu.SW_CONTEXT_SWITCHES)), count(t, g, abi.ProcCounterRuntime)
		mg := count(t, g, int(pmu.SW_CPU_MIGRATIONS)) // measured in BPF mode: its valid bit is set
		t.Logf("cgroup %d: %d faults, %d switches, %d migrations, %v on CPU (work: %v)", id, faults, sw, mg, time.Duration(rt), w)
		if faults < uint64(w.Pages) || sw < uint64(w.PingPongs) || rt < uint64(w.Spin) || mg < uint64(w.Migrations) {
			t.Errorf("cgroup %d charged less than its work %+v", id, w)
		}
	}
	// The cgroups' sum (the idle and overflow rows included) against the
	// per-CPU totals over the same interval. Slack: per CPU, what
	// happened since its last switch is charged at its next one (at most
	// a few switches and faults per CPU here). A task of another cgroup
	// running through a sample (a compiler of a parallel build) has its
	// faults since it came in in the per-CPU totals only, hundreds or
	// thousands: a sample where that is so is taken again, for up to 5 s
	// (a real loss, e.g. counts of a CPU's pending part never published,
	// stays).
	//
	// Migrations: the program charges one when set_task_cpu() moves a
	// task (sched_migrate_task); the per-CPU cpu-migrations event counts
	// it when the moved task next runs on its new CPU, once however many
	// moves came before that run. So the two differ by the tasks moved
	// but not run yet at either end (a few per CPU: the runnable tasks),
	// and by tasks moved twice before running (a wakeup's move, then a
	// load balancer's pull: rare): the same slack.
	sum := func(rows []client.Cgroup, i int) (s uint64) {
		for _, r := range rows {
			s += r.Counters[i]
		}
		return s
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var bad []string
		for _, i := range []pmu.PresetID{pmu.SW_PAGE_FAULTS, pmu.SW_CONTEXT_SWITCHES, pmu.SW_CPU_MIGRATIONS} {
			var tot uint64
			for cpu := range cpu1.Rows {
				if cpu1.Rows[cpu].Has(int(i)) && cpu0.Rows[cpu].Has(int(i)) {
					tot += cpu1.Rows[cpu].Vals[i] - cpu0.Rows[cpu].Vals[i]
				}
			}
			if i == pmu.SW_CPU_MIGRATIONS && tot < uint64(migrate) {
				t.Fatalf("per-CPU migrations preset: %d over the work, fewer than its %d moves (is the event counting?)", tot, migrate)
			}
			cg := sum(all1, int(i)) - sum(all0, int(i))
			slack := tot/20 + 200
			t.Logf("%v: cgroups %d, CPUs %d", i, cg, tot)
			if cg+slack < tot || cg > tot+slack {
				bad = append(bad, fmt.Sprintf("%v: cgroups' sum %d vs per-CPU total %d (slack %d)", i, cg, tot, slack))
			}
		}
		if len(bad) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("for 5 s of samples: %s", strings.Join(bad, "; "))
			break
		}
		time.Sleep(20 * time.Millisecond)
		settledSample(t, p)
		if cpu1, err = c.SamplePMU(); err != nil {
			t.Fatal(err)
		}
		if all1, err = c.Cgroups(nil); err != nil {
			t.Fatal(err)
		}
	}

	// Moving a process moves its later counts.
	a0, _ := cgroupByID(t, c, idA)
	b0, _ := cgroupByID(t, c, idB)
	pr, err := cgwork.StartWaiting(dirA, cgwork.Spec{Pages: 2500})
	if err != nil {
		t.Fatal(err)
	}
	if err := cgwork.Move(dirB, pr.Cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := pr.Go(); err != nil {
		t.Fatal(err)
	}
	if err := pr.Wait(); err != nil {
		t.Fatal(err)
	}
	var a1, b1 client.Cgroup
	sampleUntil(t, p, func() bool {
		a1, _ = cgroupByID(t, c, idA)
		b1, _ = cgroupByID(t, c, idB)
		return b1.Sub(b0).Counters[pmu.SW_PAGE_FAULTS] >= 2500
	})
	da, db := a1.Sub(a0).Counters[pmu.SW_PAGE_FAULTS], b1.Sub(b0).Counters[pmu.SW_PAGE_FAULTS]
	t.Logf("after the move: %d faults in A, %d in B", da, db)
	if db < 2500 || da >= 1000 {
		t.Errorf("moved process: %d faults charged to A, %d to B; want ≥ 2500 in B", da, db)
	}

	// Removing a cgroup frees its row.
	if err := os.Remove(dirA); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		if err := p.SampleAll(); err != nil {
			t.Fatal(err)
		}
		if _, ok := cgroupByID(t, c, idA); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("removed cgroup's row still there")
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := p.CgroupStats()
	if st.Mode != "bpf" || st.Switches == 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestCgroupsPerfMode counts a parent and its children with perf cgroup
// events, and refuses a set that needs too many descriptors.
func TestCgroupsPerfMode(t *testing.T) {
	ct := newCgroupTest(t)
	tag := strconv.Itoa(os.Getpid())
	parent, _ := ct.Mkdir("kushm-test-perf-" + tag)
	kid, kidID := ct.Mkdir(filepath.Join("kushm-test-perf-"+tag, "kid"))
	ct.Mkdir(filepath.Join("kushm-test-perf-"+tag, "kid2"))

	_, err := New(Config{Root: "/", Path: filepath.Join(t.TempDir(), "kushm"), Cgroups: CgroupPerf, CgroupParent: parent, CgroupMaxFDs: 4, Watch: Watch{None: true}, NoMSR: true})
	if !errors.Is(err, ErrTooManyFDs) || !strings.Contains(err.Error(), "--cgroup-max-fds 4") {
		t.Fatalf("over the descriptor cap: err %v", err)
	}

	p := newCgroupProvider(t, CgroupPerf, func(c *Config) { c.CgroupParent = parent })
	if st := p.CgroupStats(); st.PerfFDs == 0 || st.Mode != "perf" {
		t.Fatalf("stats %+v", st)
	}
	if err := cgwork.Run(kid, cgwork.Spec{Pages: 2000, Spin: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if err := p.SampleAll(); err != nil {
		t.Fatal(err)
	}
	c, err := client.Open(client.Options{Path: p.Path()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	g, ok := cgroupByID(t, c, kidID)
	if !ok {
		t.Fatal("child cgroup has no row")
	}
	if f := count(t, g, int(pmu.SW_PAGE_FAULTS)); f < 2000 {
		t.Errorf("perf mode: %d faults < 2000", f)
	}
	if rt := count(t, g, abi.ProcCounterRuntime); rt < uint64(20*time.Millisecond) {
		t.Errorf("perf mode: on-CPU %v < 20ms", time.Duration(rt))
	}
}

// TestCgroupsAutoOffWithFixtureRoot: a fixture root leaves the section
// empty and says why.
func TestCgroupsAutoOffWithFixtureRoot(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"sys/devices/system/cpu/possible", "sys/devices/system/cpu/online", "proc/cpuinfo"} {
		b, err := os.ReadFile("/" + f)
		if err != nil {
			t.Skip(err)
		}
		os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755)
		if err := os.WriteFile(filepath.Join(root, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := newTest(t, Config{Root: root, Watch: Watch{None: true}, NoMSR: true})
	found := false
	for _, u := range p.Unavailable() {
		if u.What == abi.SecNameCgroups {
			found = strings.Contains(u.Cause, "fixture root")
		}
	}
	if !found {
		t.Errorf("no reason for the empty cgroups section: %v", p.Unavailable())
	}
}

// TestCgroupsChurn creates and removes 1,000 cgroups, a short process
// in each, in batches larger than the table, while a reader reads: the
// rows of removed cgroups are freed (no leak), the charges that found the
// table full are counted, readers never fail, and the kernel logs no
// warning.
func TestCgroupsChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 cgroups and processes")
	}
	ct := newCgroupTest(t)
	const capacity, total, batch = 64, 1000, 100
	p := newCgroupProvider(t, CgroupBPF, func(c *Config) { c.CgroupCapacity = capacity })
	c, err := client.Open(client.Options{Path: p.Path()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dmesg0 := kernelWarnings(t)
	if err := p.SampleAll(); err != nil {
		t.Fatal(err)
	}
	base := p.CgroupStats().Cgroups

	stop := make(chan struct{})
	readerErr := make(chan error, 1)
	reads := 0
	go func() {
		defer close(readerErr)
		for {
			select {
			case <-stop:
				return
			default:
			}
			rows, err := c.Cgroups(nil)
			if err != nil {
				readerErr <- err
				return
			}
			if len(rows) > capacity {
				readerErr <- fmt.Errorf("%d rows in a table of %d", len(rows), capacity)
				return
			}
			reads++
		}
	}()
	tag := strconv.Itoa(os.Getpid())
	for n := 0; n < total; n += batch {
		var dirs []string
		for i := n; i < n+batch; i++ {
			dir, _ := ct.Mkdir(fmt.Sprintf("kushm-churn-%s-%d", tag, i))
			dirs = append(dirs, dir)
			cmd := exec.Command("/bin/true")
			f, err := os.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
			err = cmd.Run()
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := p.SampleAll(); err != nil {
			t.Fatal(err)
		}
		for _, d := range dirs {
			if err := ct.Remove(d); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Removals arrive through the rmdir tracepoint: a few samples free
	// every row.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := p.SampleAll(); err != nil {
			t.Fatal(err)
		}
		if p.CgroupStats().Cgroups <= base+2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	if err := <-readerErr; err != nil {
		t.Fatalf("reader: %v", err)
	}
	st := p.CgroupStats()
	ts, _ := c.CgroupTableStats()
	t.Logf("rows %d (before %d), overflow charges %d, table %+v, %d reads", st.Cgroups, base, st.Overflow, ts, reads)
	if st.Cgroups > base+2 {
		t.Errorf("leak: %d rows after removing every cgroup (%d before)", st.Cgroups, base)
	}
	if st.Overflow == 0 {
		t.Errorf("batches of %d cgroups in a table of %d: no charge counted as overflow", batch, capacity)
	}
	if ts.Inserts < capacity || ts.Deletes+uint64(base)+2 < ts.Inserts {
		t.Errorf("rows inserted %d, deleted %d: removed cgroups' rows not freed", ts.Inserts, ts.Deletes)
	}
	if w := kernelWarnings(t); w > dmesg0 {
		t.Errorf("%d new kernel warnings (dmesg)", w-dmesg0)
	}
}

// kernelWarnings counts WARNING/BUG lines in the kernel log (-1 when it
// cannot be read).
func kernelWarnings(t *testing.T) int {
	out, err := exec.Command("dmesg").Output()
	if err != nil {
		return -1
	}
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "WARNING:") || strings.Contains(l, "BUG:") {
			n++
		}
	}
	return n
}

// TestPMUMuxSoftwareGroup: the software presets are one event group on
// every CPU; the pmu_mux row says so and a software group is never
// multiplexed (fraction 1).
func TestPMUMuxSoftwareGroup(t *testing.T) {
	p := newTest(t, Config{Watch: Watch{None: true}, NoMSR: true})
	softwareOK(t, p)
	c, err := client.Open(client.Options{Path: p.Path()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s0, err := c.SamplePMU()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	if err := p.SampleAll(); err != nil {
		t.Fatal(err)
	}
	s1, err := c.SamplePMU()
	if err != nil || s1.Mux == nil {
		t.Fatalf("no pmu_mux sample: %v", err)
	}
	m := s1.Mux.Rows[p.CPUs()[0]].Vals[abi.PMUMuxMap]
	g := func(id pmu.PresetID) uint64 { return m >> (4 * id) & 15 }
	if g(pmu.SW_PAGE_FAULTS) == 0 || g(pmu.SW_PAGE_FAULTS) != g(pmu.SW_TASK_CLOCK) || g(pmu.SW_PAGE_FAULTS) != g(pmu.SW_CONTEXT_SWITCHES) {
		t.Fatalf("group map %#x: software presets not one group", m)
	}
	st := c.Delta(s0, s1, nil, nil)
	n := 0
	for _, s := range st.CPUs {
		if s.Metric == client.MetricName(pmu.SW_PAGE_FAULTS) {
			if s.Fraction == nil || *s.Fraction != 1 || s.Scaled {
				t.Errorf("cpu %d page faults: fraction %v scaled %v", s.CPU, s.Fraction, s.Scaled)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no page-fault rows")
	}
}
