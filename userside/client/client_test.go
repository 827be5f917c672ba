package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/userside/client"
	"github.com/kushm/kushm/userside/provider"
)

func startProvider(t testing.TB) *provider.Provider {
	t.Helper()
	p, err := provider.New(provider.Config{
		Path: filepath.Join(t.TempDir(), "kushm"), Interval: 10 * time.Millisecond,
		ProcInterval: 10 * time.Millisecond, Watch: provider.Watch{PIDs: []int{os.Getpid()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; p.Close() })
	return p
}

func TestDiscover(t *testing.T) {
	root := t.TempDir()
	_, err := client.Discover(root)
	if !errors.Is(err, shm.ErrNoRegion) || !strings.Contains(err.Error(), "kushm serve") {
		t.Fatalf("empty root: %v", err)
	}
	_, err = client.Open(client.Options{Root: root})
	if !errors.Is(err, shm.ErrNoRegion) {
		t.Fatalf("open on empty root: %v", err)
	}
	// The daemon's path is found; the kernel's is preferred.
	os.MkdirAll(filepath.Join(root, "dev/shm"), 0o755)
	os.WriteFile(filepath.Join(root, shm.DaemonPath), nil, 0o600)
	if p, err := client.Discover(root); err != nil || p != filepath.Join(root, shm.DaemonPath) {
		t.Fatalf("daemon path: %q %v", p, err)
	}
	os.WriteFile(filepath.Join(root, shm.DevicePath), nil, 0o600)
	if p, err := client.Discover(root); err != nil || p != filepath.Join(root, shm.DevicePath) {
		t.Fatalf("device path: %q %v", p, err)
	}
}

func TestNotARegion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kushm")
	os.WriteFile(path, bytes.Repeat([]byte("x"), 8192), 0o644)
	_, err := client.Open(client.Options{Path: path})
	if err == nil || !strings.Contains(err.Error(), "not a kushm region") || !strings.Contains(err.Error(), "--region") {
		t.Fatalf("open of a non-region: %v", err)
	}
}

func TestPermission(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file: permission errors cannot be provoked")
	}
	p := startProvider(t)
	os.Chmod(p.Path(), 0o000)
	_, err := client.Open(client.Options{Path: p.Path()})
	if !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), "group") {
		t.Fatalf("no permission: %v", err)
	}
}

func TestQueryAndStats(t *testing.T) {
	p := startProvider(t)
	c, err := client.Open(client.Options{Path: p.Path()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if r, ok := c.Why("SW_PAGE_FAULTS"); ok {
		t.Skip("no software events:", r)
	}
	res, err := c.Query(context.Background(), client.QueryOptions{Metric: pmu.SW_PAGE_FAULTS, Interval: 100 * time.Millisecond, CPU: -1, PID: os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.CPUs) != c.NCPUs() || res.Sum.Total == nil || len(res.Procs) != 1 || res.Procs[0].Total == nil {
		t.Fatalf("query: %+v", res)
	}
	var buf bytes.Buffer
	json.NewEncoder(&buf).Encode(res)
	var rows struct {
		CPUs  []map[string]any `json:"cpus"`
		Procs []map[string]any `json:"procs"`
	}
	if err := json.Unmarshal(buf.Bytes(), &rows); err != nil {
		t.Fatal(err)
	}
	if _, ok := rows.CPUs[0]["cpu"]; !ok {
		t.Fatal("JSON CPU row without cpu")
	}
	if _, ok := rows.Procs[0]["pid"]; !ok {
		t.Fatal("JSON process row without pid")
	}
	// An unavailable counter is n/a with its reason, never 0.
	for _, u := range c.Unavailable() {
		id, ok := pmu.PresetByName(u.What)
		if !ok {
			continue
		}
		res, err := c.Query(context.Background(), client.QueryOptions{Metric: id, Interval: 20 * time.Millisecond, CPU: 0})
		if err != nil {
			t.Fatal(err)
		}
		if res.CPUs[0].Total != nil || res.CPUs[0].Rate != nil || res.CPUs[0].Reason != u.Cause {
			t.Fatalf("%s: %+v", u.What, res.CPUs[0])
		}
		break
	}
	st, err := c.Stats(context.Background(), 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Metrics) == 0 || len(st.CPUs) == 0 {
		t.Fatalf("stats without metrics: %+v", st)
	}
	s := c.Status()
	if s.Producer != "daemon" || s.Stale || len(s.Sections) < 5 {
		t.Fatalf("status %+v", s)
	}
}

func TestParseMetric(t *testing.T) {
	for name, want := range map[string]pmu.PresetID{"cache-misses": pmu.PAPI_L3_TCM, "PAPI_L3_TCM": pmu.PAPI_L3_TCM, "page_faults": pmu.SW_PAGE_FAULTS, "CS": pmu.SW_CONTEXT_SWITCHES} {
		if got, err := client.ParseMetric(name); err != nil || got != want {
			t.Errorf("%s: %v %v", name, got, err)
		}
	}
	if _, err := client.ParseMetric("nope"); err == nil {
		t.Error("unknown metric accepted")
	}
}

func TestParseInfo(t *testing.T) {
	un, notes := client.ParseInfo([]byte("# hello\nunavailable\tPAPI_TOT_CYC\tperf\tpermission\t13\tno PMU\n" +
		"PAPI_L1_DCM: not available on this machine, because prose is not an entry\njunk\n\x00\x00garbage"))
	if len(un) != 1 || un[0].What != "PAPI_TOT_CYC" || un[0].Cause != "no PMU" || un[0].Source != "perf" || un[0].Errno != 13 || len(notes) != 1 {
		t.Fatalf("%+v %q", un, notes)
	}
	// Data, not prose: the kind is an error to test, the sentence is composed.
	if !errors.Is(un[0], pmu.ErrPermission) || !errors.Is(un[0], pmu.ErrNotAvailable) || errors.Is(un[0], pmu.ErrNotSupported) {
		t.Errorf("%v: kind lost", un[0])
	}
	if got := un[0].Error(); got != "PAPI_TOT_CYC: not available on this machine, because no PMU" {
		t.Errorf("sentence %q", got)
	}
}

func FuzzParseInfo(f *testing.F) {
	f.Add([]byte("unavailable\tX\tperf\tnot-supported\t0\ty\n# n\n"))
	f.Add([]byte("unavailable\t\tperf\tpermission\t1\t\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		un, _ := client.ParseInfo(b)
		for _, u := range un {
			if u.What == "" {
				t.Fatal("empty name")
			}
		}
	})
}

// TestStatsCPUTime: stats carry each CPU's busy/idle/iowait/steal shares
// from the cputime section (adding up to about 100% of the interval), and
// the table prints busy% instead of task-clock.
func TestStatsCPUTime(t *testing.T) {
	p := startProvider(t)
	c, err := client.Open(client.Options{Path: p.Path()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Stats(context.Background(), 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.CPUTime) != len(p.CPUs()) {
		t.Fatalf("cpu_time rows: %+v", st.CPUTime)
	}
	for _, ct := range st.CPUTime {
		if ct.Busy == nil || ct.Idle == nil || ct.IOWait == nil || ct.Steal == nil {
			t.Fatalf("cpu %d: %+v", ct.CPU, ct)
		}
		// USER_HZ ticks (10 ms) over 500 ms, and lazy idle accounting.
		if sum := *ct.Busy + *ct.Idle + *ct.IOWait + *ct.Steal; sum < 60 || sum > 140 {
			t.Errorf("cpu %d: shares add up to %.1f%%", ct.CPU, sum)
		}
	}
}
