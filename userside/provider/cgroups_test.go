package provider

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/cgroup2"
	"github.com/kushm/kushm/internal/cgwork"
	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/userside/client"
)

// cgroupTest creates cgroups under the cgroup2 mount for one test.
type cgroupTest struct {
	t    *testing.T
	mnt  string
	dirs []string
}

func newCgroupTest(t *testing.T) *cgroupTest {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (BPF, cgroup creation)")
	}
	mnt, _, err := cgroup2.FindMount("/")
	if err != nil {
		t.Skip(err)
	}
	ct := &cgroupTest{t: t, mnt: mnt}
	t.Cleanup(func() {
		for i := len(ct.dirs) - 1; i >= 0; i-- {
			os.Remove(ct.dirs[i])
		}
	})
	return ct
}

func (ct *cgroupTest) mkdir(name string) (dir string, id uint64) {
	ct.t.Helper()
	dir = filepath.Join(ct.mnt, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		ct.t.Fatal(err)
	}
	ct.dirs = append(ct.dirs, dir)
	id, err := cgroup2.ID(dir)
	if err != nil {
		ct.t.Fatal(err)
	}
	return dir, id
}

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
	dirA, idA := ct.mkdir("kushm-test-a-" + tag)
	dirB, idB := ct.mkdir("kushm-test-b-" + tag)

	if err := p.Sample(); err != nil {
		t.Fatal(err)
	}
	cpu0, err := c.SamplePMU()
	if err != nil {
		t.Fatal(err)
	}
	all0, err := c.Cgroups(nil)
	if err != nil {
		t.Fatal(err)
	}
	works := map[uint64]cgwork.Spec{
		idA: {Pages: 3000, PingPongs: 800, Spin: 40 * time.Millisecond},
		idB: {Pages: 1000, PingPongs: 2000, Spin: 20 * time.Millisecond},
	}
	if err := cgwork.Run(dirA, works[idA]); err != nil {
		t.Fatal(err)
	}
	if err := cgwork.Run(dirB, works[idB]); err != nil {
		t.Fatal(err)
	}
	if err := p.Sample(); err != nil {
		t.Fatal(err)
	}
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
		t.Logf("cgroup %d: %d faults, %d switches, %v on CPU (work: %v)", id, faults, sw, time.Duration(rt), w)
		if faults < uint64(w.Pages) || sw < uint64(w.PingPongs) || rt < uint64(w.Spin) {
			t.Errorf("cgroup %d charged less than its work %+v", id, w)
		}
	}
	// The cgroups' sum (the idle and overflow rows included) against the
	// per-CPU totals over the same interval. Slack: per CPU, what
	// happened since its last switch is charged at its next one (at most
	// a few switches and faults per CPU here).
	sum := func(rows []client.Cgroup, i int) (s uint64) {
		for _, r := range rows {
			s += r.Counters[i]
		}
		return s
	}
	for _, i := range []pmu.PresetID{pmu.SW_PAGE_FAULTS, pmu.SW_CONTEXT_SWITCHES} {
		var tot uint64
		for cpu := range cpu1.Rows {
			if cpu1.Rows[cpu].Has(int(i)) && cpu0.Rows[cpu].Has(int(i)) {
				tot += cpu1.Rows[cpu].Vals[i] - cpu0.Rows[cpu].Vals[i]
			}
		}
		cg := sum(all1, int(i)) - sum(all0, int(i))
		slack := tot/20 + 200
		t.Logf("%v: cgroups %d, CPUs %d", i, cg, tot)
		if cg+slack < tot || cg > tot+slack {
			t.Errorf("%v: cgroups' sum %d vs per-CPU total %d (slack %d)", i, cg, tot, slack)
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
	if err := p.Sample(); err != nil {
		t.Fatal(err)
	}
	a1, _ := cgroupByID(t, c, idA)
	b1, _ := cgroupByID(t, c, idB)
	da, db := a1.Sub(a0).Counters[pmu.SW_PAGE_FAULTS], b1.Sub(b0).Counters[pmu.SW_PAGE_FAULTS]
	t.Logf("after the move: %d faults in A, %d in B", da, db)
	if db < 2500 || da >= 1000 {
		t.Errorf("moved process: %d faults charged to A, %d to B; want ≥ 2500 in B", da, db)
	}

	// Removing a cgroup frees its row.
	if err := os.Remove(dirA); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := p.Sample(); err != nil {
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
	parent, _ := ct.mkdir("kushm-test-perf-" + tag)
	kid, kidID := ct.mkdir(filepath.Join("kushm-test-perf-"+tag, "kid"))
	ct.mkdir(filepath.Join("kushm-test-perf-"+tag, "kid2"))

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
	if err := p.Sample(); err != nil {
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
