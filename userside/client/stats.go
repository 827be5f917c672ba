package client

import (
	"context"
	"fmt"
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
	// Fraction of the interval the counter was really on a hardware
	// counter (from the pmu_mux section; absent when the producer does
	// not publish it). Scaled: Fraction < 1, the rate is extrapolated.
	Fraction *float64 `json:"counted_fraction,omitempty"`
	Scaled   bool     `json:"scaled,omitempty"`
}

// CPURatio is a derived ratio of one CPU over the interval. Value is
// null, with Note saying why, when its two counters were not counted as
// one event group (a ratio of counters multiplexed apart is not one).
type CPURatio struct {
	CPU   int      `json:"cpu"`
	Name  string   `json:"name"` // "ipc", "mpki"
	Value *float64 `json:"value"`
	Note  string   `json:"note,omitempty"`
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
	// Fractions: for the hardware counters whose event group's times
	// the producer publishes, the fraction of the interval they were
	// really counted (< 1: multiplexed, the rate is scaled).
	Fractions map[string]float64 `json:"counted_fraction,omitempty"`
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
	// Ratios are IPC and MPKI per CPU where both counters are measured.
	Ratios []CPURatio `json:"ratios,omitempty"`
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
				if f, ok := muxFraction(p0.Mux, p1.Mux, cpu, id); ok {
					s.Fraction, s.Scaled = &f, f < 1
				}
			}
			st.CPUs = append(st.CPUs, s)
		}
		st.Ratios = append(st.Ratios, cpuRatios(p0, p1, cpu, d)...)
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
		if q != nil && p.Mux != nil && q.Mux != nil {
			for id := pmu.PresetID(0); id < pmu.NumPresets; id++ {
				if f, ok := procFraction(q.Mux, p.Mux, id); ok && p.Has(int(id)) {
					if ps.Fractions == nil {
						ps.Fractions = map[string]float64{}
					}
					ps.Fractions[MetricName(id)] = f
				}
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
