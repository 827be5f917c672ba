package client

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/pmu"
)

// aliases are perf-style metric names for the presets.
var aliases = map[string]pmu.PresetID{
	"cache-misses":     pmu.PAPI_L3_TCM,
	"cache-references": pmu.PAPI_L3_TCA,
	"cycles":           pmu.PAPI_TOT_CYC,
	"instructions":     pmu.PAPI_TOT_INS,
	"ref-cycles":       pmu.PAPI_REF_CYC,
	"l1d-misses":       pmu.PAPI_L1_DCM,
	"l2-misses":        pmu.PAPI_L2_TCM,
	"branches":         pmu.PAPI_BR_INS,
	"branch-misses":    pmu.PAPI_BR_MSP,
	"dtlb-misses":      pmu.PAPI_TLB_DM,
	"itlb-misses":      pmu.PAPI_TLB_IM,
	"task-clock":       pmu.SW_TASK_CLOCK,
	"page-faults":      pmu.SW_PAGE_FAULTS,
	"faults":           pmu.SW_PAGE_FAULTS,
	"context-switches": pmu.SW_CONTEXT_SWITCHES,
	"cs":               pmu.SW_CONTEXT_SWITCHES,
	"cpu-migrations":   pmu.SW_CPU_MIGRATIONS,
	"migrations":       pmu.SW_CPU_MIGRATIONS,
}

// MetricNames lists the perf-style names ParseMetric accepts (besides
// preset names such as PAPI_L3_TCM and columns such as l3_tcm).
func MetricNames() []string {
	out := make([]string, 0, len(aliases))
	for k := range aliases {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ParseMetric resolves a metric name: a perf-style alias
// ("cache-misses" is PAPI_L3_TCM, last-level cache misses), a preset
// name or a preset column.
func ParseMetric(name string) (pmu.PresetID, error) {
	if id, ok := aliases[strings.ToLower(name)]; ok {
		return id, nil
	}
	if id, ok := pmu.PresetByName(name); ok {
		return id, nil
	}
	if id, ok := pmu.PresetByName(strings.ToUpper(name)); ok {
		return id, nil
	}
	return 0, fmt.Errorf("unknown metric %q (known: %s, or a preset name such as PAPI_L3_TCM)", name, strings.Join(MetricNames(), ", "))
}

// MetricName is the perf-style name of a preset (its preset name if it
// has none).
func MetricName(id pmu.PresetID) string {
	best := ""
	for k, v := range aliases {
		if v == id && (best == "" || len(k) > len(best)) {
			best = k
		}
	}
	if best == "" {
		return id.String()
	}
	return best
}

// QueryOptions select what Query measures.
type QueryOptions struct {
	Metric   pmu.PresetID
	Interval time.Duration // between the two samples (default 1 s)
	CPU      int           // only this CPU; -1: every CPU
	PID      int           // only this process; 0: see Top
	Top      int           // the K processes with the highest rate; 0: no processes (unless PID)
}

// Row is one line of a query result: a CPU ("cpu" set) or a process
// ("pid" set). Total and Rate are null when the counter is not available,
// and Reason says why.
type Row struct {
	CPU    *int     `json:"cpu,omitempty"`
	PID    *int     `json:"pid,omitempty"`
	Comm   string   `json:"comm,omitempty"`
	Metric string   `json:"metric"`
	Total  *uint64  `json:"total"`
	Rate   *float64 `json:"rate_per_s"`
	Reason string   `json:"reason,omitempty"`
}

// Result is what Query measured.
type Result struct {
	Metric   string        `json:"metric"`
	Preset   string        `json:"preset"`
	Interval time.Duration `json:"interval_ns"`
	// Sum is the machine-wide total (over the CPUs shown).
	Sum   Row   `json:"sum"`
	CPUs  []Row `json:"cpus"`
	Procs []Row `json:"procs,omitempty"`
	// ProcNote says why processes are missing or n/a.
	ProcNote string `json:"proc_note,omitempty"`
}

func intp(v int) *int { return &v }

// Reason returns why preset id is not available: the producer's reason,
// or a generic one.
func (c *Client) Reason(id pmu.PresetID) string {
	if r, ok := c.Why(id.String()); ok {
		return r
	}
	return "the producer did not read it (no valid sample)"
}

// Query measures metric over an interval: two samples of the region, the
// difference and rate per CPU, and per process. Reads are loads from the
// mapping; it makes no system call per counter.
func (c *Client) Query(ctx context.Context, o QueryOptions) (*Result, error) {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Metric >= pmu.NumPresets {
		return nil, fmt.Errorf("query: preset %d out of range", o.Metric)
	}
	if o.CPU >= c.NCPUs() {
		return nil, fmt.Errorf("query: cpu %d: the region has CPUs 0..%d", o.CPU, c.NCPUs()-1)
	}
	wantProcs := o.PID != 0 || o.Top > 0
	p0, err := c.SamplePMU()
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	var procs0 []Proc
	if wantProcs {
		procs0, _ = c.Processes()
	}
	t := time.NewTimer(o.Interval)
	select {
	case <-ctx.Done():
		t.Stop()
		return nil, ctx.Err()
	case <-t.C:
	}
	p1, err := c.SamplePMU()
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	var procs1 []Proc
	var procsErr error
	if wantProcs {
		procs1, procsErr = c.Processes()
	}
	return c.QueryDelta(o, p0, p1, procs0, procs1, procsErr), nil
}

// QueryDelta computes what Query reports from two samples already taken
// (SamplePMU and Processes, procsErr being the second Processes' error).
// It reads nothing from the region, so it may be called after Close.
func (c *Client) QueryDelta(o QueryOptions, p0, p1 *CPUSample, procs0, procs1 []Proc, procsErr error) *Result {
	wantProcs := o.PID != 0 || o.Top > 0
	o.Interval = p1.Taken.Sub(p0.Taken)
	if o.Metric >= pmu.NumPresets || len(p0.Rows) != len(p1.Rows) {
		return &Result{Metric: fmt.Sprint(o.Metric), Interval: o.Interval, Sum: Row{Reason: "unknown metric, or samples of different regions"}}
	}
	res := &Result{Metric: MetricName(o.Metric), Preset: o.Metric.String(), Interval: o.Interval}
	res.Sum = Row{Metric: res.Metric}
	var sumT uint64
	var sumR float64
	sumOK := false
	for cpu := range p1.Rows {
		if o.CPU >= 0 && cpu != o.CPU {
			continue
		}
		if cpu >= len(p0.Rows) {
			continue
		}
		row := Row{CPU: intp(cpu), Metric: res.Metric}
		a, b := &p0.Rows[cpu], &p1.Rows[cpu]
		switch {
		case p0.Err[cpu] != nil || p1.Err[cpu] != nil:
			row.Reason = "the row could not be read consistently (its writer died mid-update)"
		case !b.Has(int(o.Metric)):
			row.Reason = c.Reason(o.Metric)
			if b.Valid == 0 && b.TimeNs == 0 {
				row.Reason = "no sample for this CPU (offline, or not sampled)"
			}
		default:
			total := b.Vals[o.Metric]
			row.Total = &total
			sumT += total
			sumOK = true
			d := atomicarr.Diff(a, b)
			if r, ok := d.Rate(int(o.Metric)); ok {
				row.Rate = &r
				sumR += r
			} else {
				switch {
				case a.TimeNs == b.TimeNs:
					// Same sample twice: the producer's interval is
					// longer than ours.
					row.Reason = "no new sample during the interval (the producer samples less often): no rate"
				case !a.Has(int(o.Metric)):
					row.Reason = "no earlier sample to compare with: no rate"
				default:
					row.Reason = "the counter went backwards (the producer restarted during the interval): no rate"
				}
			}
		}
		res.CPUs = append(res.CPUs, row)
	}
	if sumOK {
		res.Sum.Total = &sumT
		res.Sum.Rate = &sumR
	} else {
		res.Sum.Reason = c.Reason(o.Metric)
	}
	if wantProcs {
		if procsErr != nil {
			res.ProcNote = fmt.Sprintf("no per-process stats: %v", procsErr)
			return res
		}
		prev := make(map[int]*Proc, len(procs0))
		for i := range procs0 {
			prev[procs0[i].PID] = &procs0[i]
		}
		secs := o.Interval.Seconds()
		if secs <= 0 {
			secs = 1e-9
		}
		for i := range procs1 {
			p := &procs1[i]
			if o.PID != 0 && p.PID != o.PID {
				continue
			}
			row := Row{PID: intp(p.PID), Comm: p.Comm, Metric: res.Metric}
			if !p.Has(int(o.Metric)) {
				row.Reason = c.procReason(o.Metric)
			} else {
				total := p.Counters[o.Metric]
				row.Total = &total
				if q := prev[p.PID]; q != nil && q.Has(int(o.Metric)) && total >= q.Counters[o.Metric] {
					r := float64(total-q.Counters[o.Metric]) / secs
					row.Rate = &r
				}
			}
			res.Procs = append(res.Procs, row)
		}
		if o.PID != 0 && len(res.Procs) == 0 {
			res.ProcNote = fmt.Sprintf("process %d is not in the region: the producer does not watch it (kushm serve --pids/--cgroup), or it exited", o.PID)
		}
		sort.SliceStable(res.Procs, func(i, j int) bool {
			a, b := res.Procs[i], res.Procs[j]
			ra, rb := -1.0, -1.0
			if a.Rate != nil {
				ra = *a.Rate
			}
			if b.Rate != nil {
				rb = *b.Rate
			}
			if ra != rb {
				return ra > rb
			}
			return *a.PID < *b.PID
		})
		if o.PID == 0 && len(res.Procs) > o.Top {
			res.Procs = res.Procs[:o.Top]
		}
	}
	return res
}

func (c *Client) procReason(id pmu.PresetID) string {
	if r, ok := c.Why(id.String()); ok {
		return r
	}
	return fmt.Sprintf("the producer does not count %s per process", id)
}
