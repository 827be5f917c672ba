package main

import (
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
		if u.What == "SW_PAGE_FAULTS" {
			t.Skipf("software perf events not available here: %s", u.Cause)
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
