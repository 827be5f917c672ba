package provider

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/userside/client"
)

func TestCollector(t *testing.T) {
	p := newTest(t, Config{Watch: Watch{None: true}})
	softwareOK(t, p)
	p.Sample()
	c, err := client.Open(client.Options{Path: p.Path()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(c))
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
	if _, ok := c.Why(pmu.PAPI_L3_TCM.String()); ok && names[MetricName(pmu.PAPI_L3_TCM)] != 0 {
		t.Fatal("cache misses exported although not available")
	}
	if n := names["kushm_perf_available"]; n != pmu.NumPresets {
		t.Fatalf("kushm_perf_available: %d series", n)
	}
	if !strings.HasPrefix(MetricName(pmu.PAPI_L3_TCM), "kushm_perf_cache_misses_total") {
		t.Fatal(MetricName(pmu.PAPI_L3_TCM))
	}
}
