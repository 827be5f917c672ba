package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/userside/client"
)

// fixed feeds fixture rows to a cgroupCollector.
type fixed struct {
	col  *cgroupCollector
	rows []client.Cgroup
}

func (f *fixed) Describe(ch chan<- *prometheus.Desc) { f.col.Describe(ch) }
func (f *fixed) Collect(ch chan<- prometheus.Metric) {
	f.col.collectCgroups(ch, append([]client.Cgroup(nil), f.rows...))
}

func cgRow(id uint64, path string, faults, runtimeNs uint64) client.Cgroup {
	g := client.Cgroup{ID: id, Path: path}
	g.Valid = 1<<pmu.SW_PAGE_FAULTS | 1<<abi.ProcCounterRuntime
	g.Counters[pmu.SW_PAGE_FAULTS] = faults
	g.Counters[abi.ProcCounterRuntime] = runtimeNs
	return g
}

func TestCgroupSeriesLimit(t *testing.T) {
	col := newCgroupCollector(nil, nil, metricsOptions{CgroupLimit: 2})
	f := &fixed{col: col, rows: []client.Cgroup{
		cgRow(10, "/a", 100, 1e9), cgRow(11, "/b", 200, 2e9),
		cgRow(12, "/c", 300, 3e9), cgRow(13, "/d", 400, 4e9),
		cgRow(abi.CgroupKeyOverflow, client.CgroupOverflowName, 5, 0),
	}}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(f)
	want := func(s string) {
		t.Helper()
		if err := testutil.GatherAndCompare(reg, strings.NewReader(s), "kushm_cgroup_page_faults_total", "kushm_cgroup_series_overflow"); err != nil {
			t.Fatal(err)
		}
	}
	pr, _ := pmu.SW_PAGE_FAULTS.Preset()
	head := "# HELP kushm_cgroup_page_faults_total " + pr.Description + ` (SW_PAGE_FAULTS), charged to the cgroup of the task that ran; scaled when multiplexed.
# TYPE kushm_cgroup_page_faults_total counter
`
	over := `# HELP kushm_cgroup_series_overflow Cgroups summed into cgroup="other" because of the series limit.
# TYPE kushm_cgroup_series_overflow gauge
`
	want(head + `kushm_cgroup_page_faults_total{cgroup="/a"} 100
kushm_cgroup_page_faults_total{cgroup="/b"} 200
kushm_cgroup_page_faults_total{cgroup="other"} 705
` + over + "kushm_cgroup_series_overflow 3\n")

	// /a is removed (its slot frees, but /c and /d stay in "other": no
	// series moves), /d grows, a new cgroup takes the free slot.
	f.rows = []client.Cgroup{
		cgRow(11, "/b", 250, 2e9), cgRow(12, "/c", 300, 3e9), cgRow(13, "/d", 450, 4e9),
		cgRow(14, "/e", 7, 1e6), cgRow(abi.CgroupKeyOverflow, client.CgroupOverflowName, 5, 0),
	}
	want(head + `kushm_cgroup_page_faults_total{cgroup="/b"} 250
kushm_cgroup_page_faults_total{cgroup="/e"} 7
kushm_cgroup_page_faults_total{cgroup="other"} 755
` + over + "kushm_cgroup_series_overflow 3\n")
	// /d removed: its counts stay in "other" (monotonic).
	f.rows = f.rows[:2]
	f.rows = append(f.rows, cgRow(14, "/e", 9, 1e6))
	want(head + `kushm_cgroup_page_faults_total{cgroup="/b"} 250
kushm_cgroup_page_faults_total{cgroup="/e"} 9
kushm_cgroup_page_faults_total{cgroup="other"} 755
` + over + "kushm_cgroup_series_overflow 1\n")
}

// TestMetricsLint runs promtool's metric linter over everything /metrics
// exports (the per-CPU and per-cgroup collectors; per-process series on).
func TestMetricsLint(t *testing.T) {
	path := startProvider(t)
	c, err := client.Open(client.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The provider's first copy (in provider.New) holds the cgroups the
	// BPF program charged since it was attached: on an idle machine
	// maybe none yet. Wait for a row (a context switch on some CPU), so
	// that the per-cgroup series are there to lint.
	waitCgroupRows(t, c)
	g := &globals{Root: "/", metrics: metricsOptions{CgroupLimit: 5, TopProcesses: 3}}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newCollector(c))
	n, _ := client.NewCgroupNamer("/")
	reg.MustRegister(newCgroupCollector(c, n, g.metrics))
	// Fixture rows too, so the cgroup names are linted on any machine.
	fx := &fixed{col: newCgroupCollector(nil, nil, metricsOptions{CgroupLimit: 1}), rows: []client.Cgroup{cgRow(1, "/", 1, 1), cgRow(2, "/x", 1, 1)}}
	reg2 := prometheus.NewPedanticRegistry()
	reg2.MustRegister(fx)
	var probs []promlint.Problem
	for _, r := range []*prometheus.Registry{reg, reg2} {
		p, err := testutil.GatherAndLint(r)
		if err != nil {
			t.Fatal(err)
		}
		probs = append(probs, p...)
	}
	for _, p := range probs {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	var buf bytes.Buffer
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		buf.WriteString(mf.String())
	}
	if !strings.Contains(buf.String(), "kushm_cgroup_cpu_seconds_total") {
		t.Errorf("no per-cgroup series:\n%s", buf.String())
	}
	// BPF mode (root, the default) measures migrations too: every cgroup
	// row has them.
	if !strings.Contains(buf.String(), "kushm_cgroup_cpu_migrations_total") {
		t.Errorf("no per-cgroup migrations series:\n%s", buf.String())
	}
}

// waitCgroupRows polls the region until its cgroups section has a row
// (the producer copies every 10 ms here), for at most 10 s.
func waitCgroupRows(t *testing.T, c *client.Client) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rows, err := c.Cgroups(nil)
		if err != nil {
			t.Fatalf("cgroups: %v", err)
		}
		if len(rows) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no cgroup row in the region after 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
