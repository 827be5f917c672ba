package main

import (
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/userside/client"
)

// classicLe are the classic buckets' upper bounds: powers of two seconds
// from 2^-27 s (7.5 ns) to 2^6 s (64 s). Every one is a bound of the
// schema-3 buckets (Prometheus index 8j), so the classic counts are
// exact sums of native buckets, not estimates.
const classicLo, classicHi = -27, 6

// syscallCollector exports the syscall-latency histograms of a region:
//
//   - kushm_syscall_latency_seconds{syscall}: the latency distribution of
//     the syscall's recent window, as a native histogram (schema 3, the
//     region's own buckets, zero threshold 0) and classic buckets (powers
//     of two seconds). The window decays (docs/helpers.md, "Latency
//     histograms"): it is a gauge histogram in meaning, so use it as an
//     instant vector (histogram_quantile(0.99, kushm_syscall_latency_seconds)),
//     not through rate(), whose counter-reset handling misreads every
//     halving. Latencies above 107.6 s are counted in the bucket
//     (107.6 s, 117.4 s].
//   - kushm_syscall_calls_total{syscall}: samples ever recorded (a counter).
//   - kushm_syscall_outliers_total{syscall}: samples above the threshold.
//   - kushm_syscall_threshold_seconds{syscall,mode}: the threshold in force
//     (absent during the warm-up).
type syscallCollector struct {
	c                               *client.Client
	lat, calls, outliers, threshold *prometheus.Desc
}

func newSyscallCollector(c *client.Client) *syscallCollector {
	return &syscallCollector{
		c: c,
		lat: prometheus.NewDesc("kushm_syscall_latency_seconds",
			"Syscall latency over the recent, decaying window (a gauge histogram: query it as an instant vector, not with rate()).",
			[]string{"syscall"}, nil),
		calls:     prometheus.NewDesc("kushm_syscall_calls_total", "Syscall latencies recorded.", []string{"syscall"}, nil),
		outliers:  prometheus.NewDesc("kushm_syscall_outliers_total", "Syscalls slower than their threshold.", []string{"syscall"}, nil),
		threshold: prometheus.NewDesc("kushm_syscall_threshold_seconds", "The syscall's outlier threshold in force.", []string{"syscall", "mode"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (col *syscallCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- col.lat
	ch <- col.calls
	ch <- col.outliers
	ch <- col.threshold
}

// Collect implements prometheus.Collector: nothing when the region has
// no syscalls table.
func (col *syscallCollector) Collect(ch chan<- prometheus.Metric) {
	st, err := col.c.Syscalls()
	if err != nil {
		return
	}
	for _, s := range st {
		ch <- prometheus.MustNewConstMetric(col.calls, prometheus.CounterValue, float64(s.Total), s.Name)
		ch <- prometheus.MustNewConstMetric(col.outliers, prometheus.CounterValue, float64(s.Outliers), s.Name)
		if s.ThresholdNs != 0 {
			v := float64(s.ThresholdNs) / 1e9
			if s.ThresholdNs == math.MaxUint64 {
				v = math.Inf(1)
			}
			ch <- prometheus.MustNewConstMetric(col.threshold, prometheus.GaugeValue, v, s.Name, s.Mode)
		}
		if m, err := latencyMetric(col.lat, s); err == nil {
			ch <- m
		}
	}
}

// latencyMetric is s's window as a native histogram with classic buckets.
func latencyMetric(desc *prometheus.Desc, s client.SyscallStat) (prometheus.Metric, error) {
	pos := map[int]int64{}
	var zero, count uint64
	for _, b := range s.Hist {
		count += b.Count
		switch {
		case b.LeNs == 0:
			zero += b.Count
		case b.LeNs == math.MaxUint64:
			pos[abi.HistMaxIndex+1] += int64(b.Count)
		default:
			pos[b.Index] += int64(b.Count)
		}
	}
	n, err := prometheus.NewConstNativeHistogram(desc, count, float64(s.SumNs)/1e9, pos, nil, zero,
		abi.HistSchema, 0, time.Time{}, s.Name)
	if err != nil {
		return nil, err
	}
	var classic []*dto.Bucket
	for j := classicLo; j <= classicHi; j++ {
		cum := zero
		for _, b := range s.Hist {
			if b.LeNs != 0 && b.LeNs != math.MaxUint64 && b.Index <= 8*j {
				cum += b.Count
			}
		}
		classic = append(classic, &dto.Bucket{CumulativeCount: &cum, UpperBound: new(math.Exp2(float64(j)))})
	}
	return &withClassic{Metric: n, buckets: classic}, nil
}

// withClassic adds classic buckets to a native histogram, so scrapers
// without native-histogram support still see a histogram.
type withClassic struct {
	prometheus.Metric
	buckets []*dto.Bucket
}

func (m *withClassic) Write(out *dto.Metric) error {
	if err := m.Metric.Write(out); err != nil {
		return err
	}
	out.Histogram.Bucket = m.buckets
	return nil
}
