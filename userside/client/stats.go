package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/pmu"
)

// CPUStat is one counter of one CPU over an interval. Total and Rate are
// null when the counter is not available.
type CPUStat struct {
	CPU    int      `json:"cpu"`
	Metric string   `json:"metric"`
	Preset string   `json:"preset"`
	Total  *uint64  `json:"total"`
	Rate   *float64 `json:"rate_per_s"`
}

// ProcStat is one process's counters over an interval.
type ProcStat struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
	// Rates per metric name; a metric that is not measured for the
	// process is absent.
	Rates  map[string]float64 `json:"rates_per_s"`
	Totals map[string]uint64  `json:"totals"`
	// CPUPercent is the process's on-CPU time over the interval, in % of
	// one CPU; null when not measured.
	CPUPercent *float64 `json:"cpu_percent"`
}

// Stats is every counter of every CPU, and the watched processes, over an
// interval.
type Stats struct {
	Interval    time.Duration `json:"interval_ns"`
	Metrics     []string      `json:"metrics"` // available metrics, in preset order
	CPUs        []CPUStat     `json:"cpus"`    // available metrics only
	Procs       []ProcStat    `json:"procs,omitempty"`
	Unavailable []Unavailable `json:"unavailable"`
	// CPUTime is each CPU's busy, idle, iowait and steal time over the
	// interval (absent when the region has no cputime section).
	CPUTime []CPUTime `json:"cpu_time,omitempty"`
}

// Delta computes Stats between two samples taken by SamplePMU and
// Processes.
func (c *Client) Delta(p0, p1 *CPUSample, procs0, procs1 []Proc) *Stats {
	st := &Stats{Interval: p1.Taken.Sub(p0.Taken), Unavailable: c.Unavailable()}
	if p0.CPUTime != nil && p1.CPUTime != nil {
		st.CPUTime = CPUTimeDelta(p0.CPUTime, p1.CPUTime)
	}
	var avail uint64
	for i := range p1.Rows {
		if p1.Err[i] == nil {
			avail |= p1.Rows[i].Valid
		}
	}
	for id := pmu.PresetID(0); id < pmu.NumPresets; id++ {
		if avail&(1<<id) != 0 {
			st.Metrics = append(st.Metrics, MetricName(id))
		}
	}
	for cpu := range p1.Rows {
		if p0.Err[cpu] != nil || p1.Err[cpu] != nil {
			continue
		}
		b := &p1.Rows[cpu]
		d := atomicarr.Diff(&p0.Rows[cpu], b)
		for id := pmu.PresetID(0); id < pmu.NumPresets; id++ {
			if avail&(1<<id) == 0 {
				continue
			}
			s := CPUStat{CPU: cpu, Metric: MetricName(id), Preset: id.String()}
			if b.Has(int(id)) {
				t := b.Vals[id]
				s.Total = &t
				if r, ok := d.Rate(int(id)); ok {
					s.Rate = &r
				}
			}
			st.CPUs = append(st.CPUs, s)
		}
	}
	prev := make(map[int]*Proc, len(procs0))
	for i := range procs0 {
		prev[procs0[i].PID] = &procs0[i]
	}
	secs := st.Interval.Seconds()
	for i := range procs1 {
		p := &procs1[i]
		ps := ProcStat{PID: p.PID, Comm: p.Comm, Rates: map[string]float64{}, Totals: map[string]uint64{}}
		q := prev[p.PID]
		for id := pmu.PresetID(0); id < pmu.NumPresets; id++ {
			if !p.Has(int(id)) {
				continue
			}
			ps.Totals[MetricName(id)] = p.Counters[id]
			if q != nil && q.Has(int(id)) && p.Counters[id] >= q.Counters[id] && secs > 0 {
				ps.Rates[MetricName(id)] = float64(p.Counters[id]-q.Counters[id]) / secs
			}
		}
		rt := abi.ProcCounterRuntime
		if q != nil && p.Has(rt) && q.Has(rt) && p.Counters[rt] >= q.Counters[rt] && secs > 0 {
			pct := float64(p.Counters[rt]-q.Counters[rt]) / 1e9 / secs * 100
			ps.CPUPercent = &pct
		}
		st.Procs = append(st.Procs, ps)
	}
	return st
}

// Stats samples the region twice, interval apart, and returns every
// counter's total and rate per CPU and per watched process.
func (c *Client) Stats(ctx context.Context, interval time.Duration) (*Stats, error) {
	if interval <= 0 {
		interval = time.Second
	}
	p0, err := c.SamplePMU()
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	procs0, _ := c.Processes()
	t := time.NewTimer(interval)
	select {
	case <-ctx.Done():
		t.Stop()
		return nil, ctx.Err()
	case <-t.C:
	}
	p1, err := c.SamplePMU()
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	procs1, _ := c.Processes()
	return c.Delta(p0, p1, procs0, procs1), nil
}

// SortProcs orders s.Procs by the rate of metric, highest first;
// processes without it come last, by CPU use.
func (s *Stats) SortProcs(metric string) {
	sort.SliceStable(s.Procs, func(i, j int) bool {
		a, b := s.Procs[i], s.Procs[j]
		ra, oka := a.Rates[metric]
		rb, okb := b.Rates[metric]
		if oka != okb {
			return oka
		}
		if ra != rb {
			return ra > rb
		}
		ca, cb := -1.0, -1.0
		if a.CPUPercent != nil {
			ca = *a.CPUPercent
		}
		if b.CPUPercent != nil {
			cb = *b.CPUPercent
		}
		if ca != cb {
			return ca > cb
		}
		return a.PID < b.PID
	})
}

// WriteJSON writes s as JSON.
func (s *Stats) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// WriteTable writes the per-CPU rates (one column per available metric),
// the top processes, and one n/a line per unavailable counter.
func (s *Stats) WriteTable(w io.Writer, topK int) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "per CPU, rates over %v:\n%-5s", s.Interval.Round(time.Millisecond), "CPU")
	// With busy time, task-clock (wall time, idle included) says nothing.
	metrics := s.Metrics
	times := map[int]CPUTime{}
	if len(s.CPUTime) > 0 {
		metrics = nil
		for _, m := range s.Metrics {
			if m != "task-clock" {
				metrics = append(metrics, m)
			}
		}
		for _, t := range s.CPUTime {
			times[t.CPU] = t
		}
		fmt.Fprintf(ew, " %7s %7s %7s", "busy%", "iowait%", "steal%")
	}
	for _, m := range metrics {
		fmt.Fprintf(ew, " %16s", m)
	}
	fmt.Fprintln(ew)
	if len(s.Metrics) == 0 && len(s.CPUTime) == 0 {
		fmt.Fprintln(ew, "(no per-CPU counter is available: see the n/a lines)")
	}
	byCPU := map[int]map[string]CPUStat{}
	var cpus []int
	for _, c := range s.CPUs {
		if byCPU[c.CPU] == nil {
			byCPU[c.CPU] = map[string]CPUStat{}
			cpus = append(cpus, c.CPU)
		}
		byCPU[c.CPU][c.Metric] = c
	}
	if len(cpus) == 0 {
		for _, t := range s.CPUTime {
			cpus = append(cpus, t.CPU)
		}
	}
	for _, cpu := range cpus {
		fmt.Fprintf(ew, "%-5d", cpu)
		if len(s.CPUTime) > 0 {
			t := times[cpu]
			fmt.Fprintf(ew, " %7s %7s %7s", FormatPercent(t.Busy), FormatPercent(t.IOWait), FormatPercent(t.Steal))
		}
		for _, m := range metrics {
			c := byCPU[cpu][m]
			fmt.Fprintf(ew, " %16s", formatMetricRate(m, c.Rate))
		}
		fmt.Fprintln(ew)
	}
	if topK > 0 && len(s.Procs) > 0 {
		metric := MetricName(pmu.PAPI_L3_TCM)
		s.SortProcs(metric)
		fmt.Fprintf(ew, "\ntop processes (by %s, then CPU use):\n%-8s %-16s %8s %14s %14s\n", metric, "PID", "COMM", "CPU%", metric, "page-faults")
		for i, p := range s.Procs {
			if i >= topK {
				break
			}
			cpu := "n/a"
			if p.CPUPercent != nil {
				cpu = fmt.Sprintf("%.1f", *p.CPUPercent)
			}
			fmt.Fprintf(ew, "%-8d %-16s %8s %14s %14s\n", p.PID, p.Comm, cpu, rateOf(p.Rates, metric), rateOf(p.Rates, "page-faults"))
		}
	}
	if len(s.Unavailable) > 0 {
		fmt.Fprintln(ew)
		for _, u := range s.Unavailable {
			fmt.Fprintf(ew, "n/a: %s\n", u.Error())
		}
	}
	return ew.err
}

func rateOf(m map[string]float64, k string) string {
	if v, ok := m[k]; ok {
		return FormatRate(&v)
	}
	return "n/a"
}

// formatMetricRate shows task-clock as CPU utilisation, others as rates.
func formatMetricRate(metric string, r *float64) string {
	if r == nil {
		return "n/a"
	}
	if metric == "task-clock" { // ns per second
		return fmt.Sprintf("%.0fms/s", *r/1e6)
	}
	return FormatRate(r)
}
