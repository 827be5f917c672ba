package main

// Rendering of the reader's data for people: the tables of query, stats
// and status (the client returns data; the CLI renders it).

import (
	"fmt"
	"io"
	"time"

	"github.com/kushm/kushm/internal/errs"
	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/userside/client"
)

// formatCount formats a counter value (or "n/a").
func formatCount(v *uint64) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprint(*v)
}

// formatRate formats a rate per second with a unit suffix (or "n/a").
func formatRate(v *float64) string {
	if v == nil {
		return "n/a"
	}
	x := *v
	switch {
	case x >= 1e9:
		return fmt.Sprintf("%.2fG/s", x/1e9)
	case x >= 1e6:
		return fmt.Sprintf("%.2fM/s", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.2fk/s", x/1e3)
	}
	return fmt.Sprintf("%.1f/s", x)
}

// writeQueryTable writes r as an aligned table; counters that are not
// available show "n/a", and each distinct reason is printed once below.
func writeQueryTable(w io.Writer, r *client.Result) error {
	ew := &errWriter{w: w}
	var reasons []string
	note := func(row client.Row) string {
		if row.Reason == "" {
			return ""
		}
		for i, x := range reasons {
			if x == row.Reason {
				return fmt.Sprintf("  [%d]", i+1)
			}
		}
		reasons = append(reasons, row.Reason)
		return fmt.Sprintf("  [%d]", len(reasons))
	}
	fmt.Fprintf(ew, "%s (%s) over %v\n", r.Metric, r.Preset, r.Interval)
	fmt.Fprintf(ew, "%-8s %20s %14s\n", "CPU", "TOTAL", "RATE")
	for _, row := range r.CPUs {
		fmt.Fprintf(ew, "%-8d %20s %14s%s\n", *row.CPU, formatCount(row.Total), formatRate(row.Rate), note(row))
	}
	fmt.Fprintf(ew, "%-8s %20s %14s%s\n", "all", formatCount(r.Sum.Total), formatRate(r.Sum.Rate), note(r.Sum))
	measured := false
	for _, row := range r.Procs {
		measured = measured || row.Total != nil
	}
	switch {
	case measured:
		fmt.Fprintf(ew, "\n%-8s %-16s %20s %14s\n", "PID", "COMM", "TOTAL", "RATE")
		for _, row := range r.Procs {
			fmt.Fprintf(ew, "%-8d %-16s %20s %14s%s\n", *row.PID, row.Comm, formatCount(row.Total), formatRate(row.Rate), note(row))
		}
	case len(r.Procs) > 0:
		fmt.Fprintf(ew, "per process: n/a%s\n", note(r.Procs[0]))
	}
	if r.ProcNote != "" {
		fmt.Fprintln(ew, r.ProcNote)
	}
	for i, x := range reasons {
		fmt.Fprintf(ew, "[%d] n/a: %s\n", i+1, errs.Unavailable{What: r.Preset, Cause: x}.Error())
	}
	return ew.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// writeStatsTable writes the per-CPU rates (one column per available metric),
// the top processes, and one n/a line per unavailable counter.
func writeStatsTable(w io.Writer, s *client.Stats, topK int) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "per CPU, rates over %v:\n%-5s", s.Interval.Round(time.Millisecond), "CPU")
	// With busy time, task-clock (wall time, idle included) says nothing.
	metrics := s.Metrics
	times := map[int]client.CPUTime{}
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
	scaled := false
	byCPU := map[int]map[string]client.CPUStat{}
	var cpus []int
	for _, c := range s.CPUs {
		if byCPU[c.CPU] == nil {
			byCPU[c.CPU] = map[string]client.CPUStat{}
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
			fmt.Fprintf(ew, " %7s %7s %7s", formatPercent(t.Busy), formatPercent(t.IOWait), formatPercent(t.Steal))
		}
		for _, m := range metrics {
			c := byCPU[cpu][m]
			v := formatMetricRate(m, c.Rate)
			if c.Scaled {
				v += "*" // extrapolated from part of the interval
				scaled = true
			}
			fmt.Fprintf(ew, " %16s", v)
		}
		fmt.Fprintln(ew)
	}
	if scaled {
		fmt.Fprintln(ew, "* scaled: multiplexed, counted only part of the interval (counted_fraction in -o json)")
	}
	for _, r := range s.Ratios {
		if r.Value != nil {
			fmt.Fprintf(ew, "cpu %d %s %.3f\n", r.CPU, r.Name, *r.Value)
		} else {
			fmt.Fprintf(ew, "cpu %d %s n/a: %s\n", r.CPU, r.Name, r.Note)
		}
	}
	if topK > 0 && len(s.Procs) > 0 {
		metric := client.MetricName(pmu.PAPI_L3_TCM)
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
			fmt.Fprintf(ew, "%-8d %-16s %8s %14s %14s\n", p.PID, p.Comm, cpu, procRate(p, metric), rateOf(p.Rates, "page-faults"))
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
		return formatRate(&v)
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
	return formatRate(r)
}

// writeStatusTable writes s for people.
func writeStatusTable(w io.Writer, s *client.Status) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "region:     %s (ABI %s, %d CPUs)\n", s.Path, s.ABI, s.NCPUs)
	who := s.Producer + " " + s.ProducerName
	if s.PID != 0 {
		who += fmt.Sprintf(" pid %d", s.PID)
	}
	fmt.Fprintf(ew, "producer:   %s, generation %d, created %s\n", who, s.Generation, s.Created.UTC().Format(time.RFC3339))
	fresh := "fresh"
	if s.Stale {
		fresh = "STALE: " + s.StaleReason
	}
	fmt.Fprintf(ew, "state:      %s, last heartbeat %v ago (%s)\n", s.State, s.HeartbeatAge.Round(time.Millisecond), fresh)
	if s.ProcessesNote != "" {
		fmt.Fprintf(ew, "processes:  %d watched (%s)\n", s.Processes, s.ProcessesNote)
	} else {
		fmt.Fprintf(ew, "processes:  %d watched\n", s.Processes)
	}
	fmt.Fprintf(ew, "sections:\n")
	for _, sec := range s.Sections {
		extra := ""
		if sec.External {
			extra += " external (.ctl)"
		}
		if sec.Writable {
			extra += " user-writable"
		}
		if sec.Missing {
			why := sec.MissingReason
			if why == "" {
				why = "no access to the .ctl file"
			}
			extra += " MISSING (" + why + ")"
		}
		fmt.Fprintf(ew, "  %-10s %-9s %9d bytes %6d elements%s\n", sec.Name, sec.Kind, sec.Size, sec.Count, extra)
	}
	for _, n := range s.Notes {
		fmt.Fprintf(ew, "note:       %s\n", n)
	}
	if len(s.Unavailable) == 0 {
		fmt.Fprintln(ew, "unavailable: nothing")
	} else {
		fmt.Fprintln(ew, "unavailable:")
		for _, u := range s.Unavailable {
			fmt.Fprintf(ew, "  n/a: %s\n", u.Error())
		}
	}
	return ew.err
}

// formatPercent formats a share (or "n/a").
func formatPercent(v *float64) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", *v)
}

// procRate is a process's rate of metric, marked "*" when its counter was
// multiplexed (counted part of the interval, the rate scaled).
func procRate(p client.ProcStat, metric string) string {
	r := rateOf(p.Rates, metric)
	if f, ok := p.Fractions[metric]; ok && f < 1 {
		r += "*"
	}
	return r
}
