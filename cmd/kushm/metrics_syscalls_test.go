package main

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/userside/client"
)

// TestSyscallCollector: read's window is exported as a native histogram of
// schema 3 whose buckets hold exactly the samples fed, and as classic
// buckets whose cumulative counts equal a brute-force count of the samples
// at or below each bound.
func TestSyscallCollector(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	xs := make([]uint64, 20_000)
	for i := range xs {
		xs[i] = uint64(3000 * math.Exp(1.2*rng.NormFloat64()))
	}
	xs[0], xs[1] = 0, 200_000_000_000 // the zero bucket and above 107.6 s
	path := histRegion(t, xs)
	r, err := shm.Open(path, shm.Options{AllowStale: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newSyscallCollector(client.FromRegion(r)))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		seen[mf.GetName()] = true
		if mf.GetName() != "kushm_syscall_latency_seconds" {
			continue
		}
		if len(mf.GetMetric()) != 1 {
			t.Fatalf("%d latency series", len(mf.GetMetric()))
		}
		m := mf.GetMetric()[0]
		if l := m.GetLabel(); len(l) != 1 || l[0].GetName() != "syscall" || l[0].GetValue() != "read" {
			t.Fatalf("labels %v", l)
		}
		h := m.GetHistogram()
		if h.GetSchema() != 3 || h.GetSampleCount() != uint64(len(xs)) || h.GetZeroCount() != 1 || h.GetZeroThreshold() != 0 {
			t.Fatalf("native histogram: schema %d count %d zero %d", h.GetSchema(), h.GetSampleCount(), h.GetZeroCount())
		}
		// Native buckets: spans and deltas add up to the samples.
		var total, cur int64
		for _, d := range h.GetPositiveDelta() {
			cur += d
			total += cur
		}
		if total+1 != int64(len(xs)) {
			t.Fatalf("native buckets hold %d samples, want %d", total+1, len(xs))
		}
		if len(h.GetBucket()) != classicHi-classicLo+1 {
			t.Fatalf("%d classic buckets", len(h.GetBucket()))
		}
		for _, b := range h.GetBucket() {
			le := b.GetUpperBound()
			var want uint64
			for _, x := range xs {
				if float64(x) <= le*1e9 {
					want++
				}
			}
			if b.GetCumulativeCount() != want {
				t.Errorf("classic le=%g: %d, brute force %d", le, b.GetCumulativeCount(), want)
			}
		}
	}
	for _, n := range []string{"kushm_syscall_latency_seconds", "kushm_syscall_calls_total", "kushm_syscall_outliers_total", "kushm_syscall_threshold_seconds"} {
		if !seen[n] {
			t.Errorf("%s missing", n)
		}
	}
}
