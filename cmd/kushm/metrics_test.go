package main

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/userside/client"
	"github.com/kushm/kushm/userside/provider"
)

func TestCollector(t *testing.T) {
	p, err := provider.New(provider.Config{
		Path: filepath.Join(t.TempDir(), "kushm"), Interval: 10 * time.Millisecond,
		Watch: provider.Watch{None: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, u := range p.Unavailable() {
		if u.Name == "SW_PAGE_FAULTS" {
			t.Skipf("software perf events not available here: %s", u.Reason)
		}
	}
	p.Sample()
	c, err := client.Open(client.Options{Path: p.Path()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newCollector(c))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]int{}
	for _, mf := range mfs {
		names[mf.GetName()] = len(mf.GetMetric())
	}
	if names["kushm_perf_page_faults_total"] != len(p.CPUs()) {
		t.Fatalf("page faults series: %d, want one per CPU (%v)", names["kushm_perf_page_faults_total"], names)
	}
	// An unavailable counter is absent, not 0.
	if _, ok := c.Why(pmu.PAPI_L3_TCM.String()); ok && names[metricName(pmu.PAPI_L3_TCM)] != 0 {
		t.Fatal("cache misses exported although not available")
	}
	if n := names["kushm_perf_available"]; n != pmu.NumPresets {
		t.Fatalf("kushm_perf_available: %d series", n)
	}
	if !strings.HasPrefix(metricName(pmu.PAPI_L3_TCM), "kushm_perf_cache_misses_total") {
		t.Fatal(metricName(pmu.PAPI_L3_TCM))
	}
}

// TestServeMetrics: the endpoint serve --listen starts reads the region
// through the client and serves it; stop shuts it down.
func TestServeMetrics(t *testing.T) {
	path := startProvider(t)
	var log bytes.Buffer
	stop, err := serveMetrics(path, "127.0.0.1:0", &log)
	if err != nil {
		t.Fatal(err)
	}
	_, addr, ok := strings.Cut(strings.TrimSpace(log.String()), "metrics on ")
	if !ok {
		t.Fatalf("no address logged: %q", log.String())
	}
	resp, err := http.Get(addr)
	if err != nil {
		stop()
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	stop()
	if !strings.Contains(string(body), "kushm_heartbeat_age_seconds") {
		t.Fatalf("metrics lack the heartbeat age:\n%s", body)
	}
	if _, err := http.Get(addr); err == nil {
		t.Fatal("endpoint still serving after stop")
	}
	if _, err := serveMetrics(filepath.Join(t.TempDir(), "none"), "127.0.0.1:0", nil); err == nil {
		t.Fatal("metrics of a missing region started")
	}
}
