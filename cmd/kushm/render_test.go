package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/userside/client"
)

func f64(v float64) *float64 { return &v }
func u64(v uint64) *uint64   { return &v }
func intp(v int) *int        { return &v }

// The tables render the client's data: counters that are not available
// show n/a and the producer's reason once, as the one composed sentence.
func TestRenderQueryTable(t *testing.T) {
	why := "the kernel has no hardware PMU for this CPU (ENOENT)"
	r := &client.Result{Metric: "cache-misses", Preset: pmu.PAPI_L3_TCM.String(), Interval: time.Second,
		CPUs: []client.Row{{CPU: intp(0), Reason: why}, {CPU: intp(1), Reason: why}},
		Sum:  client.Row{Reason: why}}
	var buf bytes.Buffer
	if err := writeQueryTable(&buf, r); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Count(out, "n/a") < 6 || strings.Count(out, why) != 1 ||
		!strings.Contains(out, "[1] n/a: PAPI_L3_TCM: not available on this machine, because "+why) {
		t.Fatalf("query table:\n%s", out)
	}
	r = &client.Result{Metric: "page-faults", Preset: "SW_PAGE_FAULTS", Interval: time.Second,
		CPUs: []client.Row{{CPU: intp(0), Total: u64(12345), Rate: f64(2.5e6)}}, Sum: client.Row{Total: u64(12345), Rate: f64(2.5e6)}}
	buf.Reset()
	writeQueryTable(&buf, r)
	if !strings.Contains(buf.String(), "12345") || !strings.Contains(buf.String(), "2.50M/s") {
		t.Fatalf("rates:\n%s", buf.String())
	}
}

func TestRenderStatsTable(t *testing.T) {
	st := &client.Stats{Interval: time.Second, Metrics: []string{"task-clock", "page-faults"},
		CPUs:        []client.CPUStat{{CPU: 0, Metric: "page-faults", Rate: f64(1500)}},
		CPUTime:     []client.CPUTime{{CPU: 0, Busy: f64(12.5), IOWait: f64(0), Steal: nil}},
		Unavailable: []client.Unavailable{{What: "PAPI_TOT_CYC", Cause: "no PMU"}}}
	var buf bytes.Buffer
	if err := writeStatsTable(&buf, st, 0); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	// With busy time, task-clock (wall time, idle included) is left out.
	if head := lines[1]; !strings.Contains(head, "busy%") || strings.Contains(head, "task-clock") || !strings.Contains(head, "page-faults") {
		t.Errorf("header %q", head)
	}
	if !strings.Contains(lines[2], "12.5%") || !strings.Contains(lines[2], "1.50k/s") || !strings.Contains(lines[2], "n/a") {
		t.Errorf("row %q", lines[2])
	}
	if !strings.Contains(buf.String(), "n/a: PAPI_TOT_CYC: not available on this machine, because no PMU") {
		t.Errorf("no n/a line:\n%s", buf.String())
	}
}

func TestRenderFormats(t *testing.T) {
	for _, c := range []struct {
		v    *float64
		want string
	}{{nil, "n/a"}, {f64(3), "3.0/s"}, {f64(4500), "4.50k/s"}, {f64(7e6), "7.00M/s"}, {f64(2e9), "2.00G/s"}} {
		if got := formatRate(c.v); got != c.want {
			t.Errorf("formatRate(%v) = %q, want %q", c.v, got, c.want)
		}
	}
	if formatCount(nil) != "n/a" || formatCount(u64(7)) != "7" || formatPercent(nil) != "n/a" || formatPercent(f64(1.25)) != "1.2%" {
		t.Error("formatCount/formatPercent")
	}
	if got := formatMetricRate("task-clock", f64(5e8)); got != "500ms/s" {
		t.Errorf("task-clock %q", got)
	}
}
