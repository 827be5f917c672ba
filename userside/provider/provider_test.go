package provider

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/userside/client"
)

// newTest starts a provider on a temporary region watching this process.
func newTest(t testing.TB, cfg Config) *Provider {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "kushm")
	}
	if cfg.Interval == 0 {
		cfg.Interval = 10 * time.Millisecond
	}
	if !cfg.Watch.None && cfg.Watch.PIDs == nil && cfg.Watch.UID == nil && cfg.Watch.Cgroup == "" {
		cfg.Watch.PIDs = []int{os.Getpid()}
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func softwareOK(t testing.TB, p *Provider) {
	for _, u := range p.Unavailable() {
		if u.What == "SW_PAGE_FAULTS" {
			t.Skipf("software perf events not available here: %s", u.Cause)
		}
	}
}

func TestProviderSamples(t *testing.T) {
	p := newTest(t, Config{})
	softwareOK(t, p)
	if err := p.Sample(); err != nil {
		t.Fatal(err)
	}
	c, err := client.Open(client.Options{Path: p.Path()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cpu := p.CPUs()[0]
	if _, ok := c.Counter(cpu, pmu.SW_PAGE_FAULTS); !ok {
		t.Fatal("page faults not valid after a sample")
	}
	// Every preset the provider lists as unavailable is n/a in the
	// region, never a 0 with a valid bit.
	for _, u := range p.Unavailable() {
		if id, ok := pmu.PresetByName(u.What); ok {
			if v, ok := c.Counter(cpu, id); ok {
				t.Errorf("%s listed unavailable but valid (%d)", u.What, v)
			}
			if r, ok := c.Why(u.What); !ok || r == "" {
				t.Errorf("%s: no reason in the info section", u.What)
			}
		}
	}
	pr, err := c.Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !pr.Has(int(pmu.SW_PAGE_FAULTS)) || pr.Counters[pmu.SW_PAGE_FAULTS] == 0 {
		t.Fatalf("own process: %+v", pr)
	}
	if pr.Has(int(pmu.SW_CONTEXT_SWITCHES)) {
		t.Fatal("context switches claimed per process, but the provider does not measure them")
	}
	// Page faults grow by at least the pages touched.
	p.lastProc = time.Time{}
	before := pr.Counters[pmu.SW_PAGE_FAULTS]
	const pages = 1000
	touchPages(t, pages)
	p.lastProc = time.Time{}
	if err := p.Sample(); err != nil {
		t.Fatal(err)
	}
	pr, _ = c.Process(os.Getpid())
	if d := pr.Counters[pmu.SW_PAGE_FAULTS] - before; d < pages {
		t.Fatalf("+%d page faults for %d pages", d, pages)
	}
}

func TestControlValidation(t *testing.T) {
	p := newTest(t, Config{Interval: 100 * time.Millisecond})
	c, b := openControl(t, p)
	u32 := func(off int) *uint32 { return (*uint32)(unsafe.Pointer(&b[off])) }
	// The count is in the header, where users cannot overwrite it.
	rejected := func() uint64 { return c.Header().ControlRejected }

	atomic.StoreUint32(u32(8), 5) // 5 µs: below the minimum
	p.readControl()
	p.readControl() // the same bad value is counted once
	if p.Interval() != 100*time.Millisecond || rejected() != 1 {
		t.Fatalf("bad interval: interval %v, rejected %d", p.Interval(), rejected())
	}
	atomic.StoreUint32(u32(8), 0xffffffff)
	atomic.StoreUint32(u32(12), abi.MaxKx100+1)
	p.readControl()
	if p.Interval() != 100*time.Millisecond || rejected() != 3 {
		t.Fatalf("bad values: interval %v, rejected %d", p.Interval(), rejected())
	}
	atomic.StoreUint32(u32(8), 20_000)
	p.readControl()
	if p.Interval() != 20*time.Millisecond {
		t.Fatalf("valid interval not applied: %v", p.Interval())
	}
	atomic.StoreUint32(u32(8), 0)
	p.readControl()
	if p.Interval() != 100*time.Millisecond {
		t.Fatalf("0 must restore the configured interval: %v", p.Interval())
	}
	// The threshold rules: a bad mode, q, factor or decay is counted; good
	// ones are not.
	before := rejected()
	atomic.StoreUint32(u32(int(abi.ControlThModeOff)), abi.ThModeInterp)
	atomic.StoreUint32(u32(int(abi.ControlDecayShiftOff)), 12)
	p.readControl()
	if rejected() != before {
		t.Fatalf("valid rules counted as refused: %d → %d", before, rejected())
	}
	atomic.StoreUint32(u32(int(abi.ControlThModeOff)), 9)
	atomic.StoreUint32(u32(int(abi.ControlQppmOff)), 1_000_000)
	atomic.StoreUint32(u32(int(abi.ControlFactorX1000Off)), abi.MaxFactorX1000+1)
	atomic.StoreUint32(u32(int(abi.ControlDecayShiftOff)), 3)
	p.readControl()
	if rejected() != before+4 {
		t.Fatalf("four bad rule values: rejected %d → %d", before, rejected())
	}
}

func TestBusyStaleAndTaken(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kushm")
	p := newTest(t, Config{Path: path})
	// A second provider on a live region is refused.
	if _, err := New(Config{Path: path, Watch: Watch{None: true}}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second provider: %v", err)
	}
	// Stopped cleanly: a new provider replaces it.
	p.Close()
	q, err := New(Config{Path: path, Watch: Watch{None: true}})
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
	// A path taken by another file is refused with a clear message.
	other := filepath.Join(dir, "notes.txt")
	os.WriteFile(other, []byte("hello"), 0o644)
	_, err = New(Config{Path: other, Watch: Watch{None: true}})
	if !errors.Is(err, shm.ErrExists) || !strings.Contains(err.Error(), "not a kushm region") {
		t.Fatalf("path taken: %v", err)
	}
	if b, _ := os.ReadFile(other); string(b) != "hello" {
		t.Fatal("the other file was changed")
	}
}

func TestFileModes(t *testing.T) {
	p := newTest(t, Config{Watch: Watch{None: true}})
	st, err := os.Stat(p.Path())
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Fatalf("region mode %v", st.Mode().Perm())
	}
	cst, err := os.Stat(p.Path() + ".ctl")
	if err != nil {
		t.Fatal(err)
	}
	if cst.Mode().Perm()&0o002 != 0 {
		t.Fatalf("control mode %v is world-writable", cst.Mode().Perm())
	}
	if _, err := New(Config{Path: filepath.Join(t.TempDir(), "k"), Files: shm.CreateOptions{Mode: 0o666}}); err == nil {
		t.Fatal("world-writable region accepted")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Interval: time.Millisecond},
		{Interval: time.Hour},
		{Presets: []pmu.PresetID{99}},
	} {
		cfg.Path = filepath.Join(t.TempDir(), "k")
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}

func TestRunStops(t *testing.T) {
	p := newTest(t, Config{Interval: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	t0 := p.Stats().Ticks // New's first sample
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Ticks-t0 < 3 {
		t.Fatalf("%d ticks in 200ms at 20ms", s.Ticks-t0)
	}
	if h := p.Region().Header(); h.State != abi.StateStopped {
		t.Fatalf("state %d after Run", h.State)
	}
	_, err := client.Open(client.Options{Path: p.Path()})
	if !errors.Is(err, shm.ErrStaleProducer) || !strings.Contains(err.Error(), "allow-stale") {
		t.Fatalf("reader of a stopped region: %v", err)
	}
}

func TestWatchUID(t *testing.T) {
	uid := os.Geteuid()
	p := newTest(t, Config{Watch: Watch{UID: &uid}})
	if err := p.Sample(); err != nil {
		t.Fatal(err)
	}
	pids := p.WatchedPIDs()
	found := false
	for _, pid := range pids {
		found = found || pid == os.Getpid()
	}
	if !found {
		t.Fatalf("own pid not among %d watched processes of uid %d", len(pids), uid)
	}
}

func TestWatchCgroup(t *testing.T) {
	b, err := os.ReadFile("/proc/self/cgroup")
	cg := parseCgroupV2(b)
	if err != nil || cg == "" {
		t.Skip("no cgroup v2 membership")
	}
	p := newTest(t, Config{Watch: Watch{Cgroup: filepath.Join("/sys/fs/cgroup", cg)}})
	found := false
	for _, pid := range p.selectPIDs() {
		found = found || pid == os.Getpid()
	}
	if !found {
		t.Fatalf("own pid not found in cgroup %s", cg)
	}
	_, err = New(Config{Path: filepath.Join(t.TempDir(), "k"), Watch: Watch{Cgroup: "/no/such/cgroup"}})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "cgroup") {
		t.Fatalf("missing cgroup: %v", err)
	}
}

func TestMonotonicClock(t *testing.T) {
	// monoNs must be the clock readers compare the heartbeat with.
	p := newTest(t, Config{Watch: Watch{None: true}})
	before := monoNs()
	p.Sample()
	h := p.Region().Header()
	after := monoNs()
	if h.HeartbeatNs < before || h.HeartbeatNs > after {
		t.Fatalf("heartbeat %d outside [%d, %d]: monoNs is not CLOCK_MONOTONIC", h.HeartbeatNs, before, after)
	}
}

func TestAdopt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kushm")
	cfg := Config{Path: path, Interval: 10 * time.Millisecond, Watch: Watch{PIDs: []int{os.Getpid()}}}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.Adopted() {
		t.Fatal("a fresh path adopted")
	}
	p.Sample()
	c, err := client.Open(client.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	gen := c.Status().Generation
	p.Close()
	if c.CheckProducer() == nil {
		t.Fatal("reader does not see the stop")
	}
	// Leave the pmu row of CPU 0 mid-update, as a producer killed between
	// W1 and W5 would.
	s, _ := c.Region().Section("pmu")
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{7, 0, 0, 0, 0, 0, 0, 0}, int64(s.Offset))
	f.Close()
	if _, ok := c.Counter(0, pmu.SW_TASK_CLOCK); ok {
		var snap atomicarr.Snapshot
		if a, err := atomicarr.Open(c.Region(), "pmu"); err == nil {
			if err := a.Snapshot(0, &snap); !errors.Is(err, shm.ErrRetry) {
				t.Fatalf("odd row snapshot: %v", err)
			}
		}
	}
	q, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if !q.Adopted() {
		t.Fatal("same layout not adopted")
	}
	q.Sample()
	// The old reader's mapping is live again, with a new generation.
	if err := c.CheckProducer(); err != nil {
		t.Fatalf("reader after adoption: %v", err)
	}
	if g := c.Status().Generation; g <= gen {
		t.Fatalf("generation %d after adoption, was %d", g, gen)
	}
	a, err := atomicarr.Open(c.Region(), "pmu")
	if err != nil {
		t.Fatal(err)
	}
	var snap atomicarr.Snapshot
	if err := a.Snapshot(0, &snap); err != nil {
		t.Fatalf("row left odd by a dead producer not repaired: %v", err)
	}
	if _, err := c.Process(os.Getpid()); err != nil {
		t.Fatalf("own process after adoption: %v", err)
	}
	// Other modes: re-created, not adopted.
	q.Close()
	cfg.Files.Mode = 0o600
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Adopted() {
		t.Fatal("region with other file modes adopted")
	}
}

func TestNoAdoptWhileOldProducerLives(t *testing.T) {
	// A stalled producer (alive, heartbeat stale) must not get a second
	// writer on its file: the new provider makes a new file.
	if testing.Short() {
		t.Skip("waits 3 s for staleness")
	}
	path := filepath.Join(t.TempDir(), "kushm")
	cfg := Config{Path: path, Watch: Watch{None: true}}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// Not stopped, and this process (its pid) is alive: only staleness
	// lets a new provider in, and then it must re-create.
	time.Sleep(3100 * time.Millisecond)
	q, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if q.Adopted() {
		t.Fatal("adopted the region of a live (stalled) producer")
	}
}

// A watched process that execs shows its new name after one process
// interval, and one that exited (and was reaped) is gone after one process
// interval (issue 12, the provider's side of it).
func TestProcsCurrentCommNoDeadPIDs(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	c := exec.Command(sh, "-c", "read x; exec sleep 5")
	in, _ := c.StdinPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { c.Process.Kill(); c.Wait() }()
	pid := c.Process.Pid
	const procInterval = 20 * time.Millisecond
	p := newTest(t, Config{ProcInterval: procInterval, Watch: Watch{PIDs: []int{pid}}})
	if err := p.Sample(); err != nil {
		t.Fatal(err)
	}
	cl, err := client.Open(client.Options{Path: p.Path()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// sample waits one process interval and samples; it returns the row.
	sample := func() (client.Proc, error) {
		time.Sleep(procInterval)
		if err := p.Sample(); err != nil {
			t.Fatal(err)
		}
		return cl.Process(pid)
	}
	comm := func() string {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		return strings.TrimSpace(string(b))
	}
	pr, err := cl.Process(pid)
	if err != nil || pr.Comm != comm() {
		t.Fatalf("before the exec: row %+v (%v), /proc says %q", pr, err, comm())
	}
	in.Write([]byte("go\n"))
	for deadline := time.Now().Add(5 * time.Second); comm() != "sleep" && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if pr, err = sample(); err != nil || pr.Comm != "sleep" {
		t.Fatalf("one process interval after the exec: row %+v (%v), want comm sleep", pr, err)
	}
	c.Process.Kill()
	c.Wait()
	if pr, err = sample(); !errors.Is(err, shm.ErrNotFound) {
		t.Fatalf("one process interval after its exit: row %+v (%v), want not found", pr, err)
	}
	if w := p.WatchedPIDs(); len(w) != 0 {
		t.Fatalf("watched pids %v after the exit", w)
	}
}
