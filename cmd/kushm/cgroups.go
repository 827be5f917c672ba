package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kushm/kushm/internal/cgroup2"
	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/userside/client"
)

// This file renders the per-cgroup views: query/stats/top --by cgroup.

func checkBy(by string) error {
	if by != "cpu" && by != "cgroup" {
		return fmt.Errorf("--by %q: use cpu or cgroup", by)
	}
	return nil
}

// cgroupNamer names cgroup ids from the cgroup2 mount under --root; nil
// (ids printed as "?<id>") when there is none.
func cgroupNamer(g *globals) client.CgroupNamer {
	n, err := client.NewCgroupNamer(g.Root)
	if err != nil {
		fmt.Fprintf(g.stderr, "kushm: cgroups are shown by id: %v\n", err)
		return nil
	}
	return n
}

// cgroupQueryRow is one row of query --by cgroup -o json.
type cgroupQueryRow struct {
	Cgroup   string   `json:"cgroup"`
	CgroupID uint64   `json:"cgroup_id"`
	Metric   string   `json:"metric"`
	Total    *uint64  `json:"total"`
	Rate     *float64 `json:"rate_per_s"`
	Fraction *float64 `json:"counted_fraction"`
	Scaled   bool     `json:"scaled"`
	Reason   string   `json:"reason,omitempty"`
}

func noCgroups(c *client.Client, err error) error {
	if why, ok := c.Why("cgroups"); ok {
		return fmt.Errorf("%w: the producer counts no cgroups, because %s", err, why)
	}
	return err
}

// queryByCgroup is query METRIC --by cgroup: the metric's total and rate
// per cgroup over the interval, highest first.
func queryByCgroup(ctx context.Context, g *globals, c *client.Client, id pmu.PresetID, interval time.Duration, top int) error {
	st, err := c.CgroupStats(ctx, interval, cgroupNamer(g))
	if err != nil {
		return noCgroups(c, err)
	}
	name := client.MetricName(id)
	rows := make([]cgroupQueryRow, 0, len(st))
	for _, s := range st {
		r := cgroupQueryRow{Cgroup: s.Cgroup, CgroupID: s.CgroupID, Metric: name}
		if v, ok := s.Counter(id); ok {
			t, rate, f := v.Total, v.Rate, v.Fraction
			r.Total, r.Rate, r.Fraction, r.Scaled = &t, &rate, &f, v.Scaled
		} else {
			r.Reason = "not counted per cgroup"
			if why, ok := c.Why(id.String()); ok {
				r.Reason = why
			}
		}
		rows = append(rows, r)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rateOr(rows[i].Rate) > rateOr(rows[j].Rate) })
	if top > 0 && len(rows) > top {
		rows = rows[:top]
	}
	if g.Output == "json" {
		return writeJSON(g, rows)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "CGROUP\tID\t%s TOTAL\tPER SECOND\tNOTE\n", strings.ToUpper(name))
	for _, r := range rows {
		if r.Total == nil {
			fmt.Fprintf(tw, "%s\t%d\tn/a\tn/a\t%s\n", r.Cgroup, r.CgroupID, r.Reason)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", r.Cgroup, r.CgroupID, *r.Total, fmtRate(*r.Rate), scaledNote(*r.Fraction))
	}
	return tw.Flush()
}

func rateOr(r *float64) float64 {
	if r == nil {
		return -1
	}
	return *r
}

func fmtRate(r float64) string { return strconv.FormatFloat(r, 'f', 1, 64) }

// scaledNote marks a value extrapolated from part of the interval.
func scaledNote(f float64) string {
	if f >= 1 {
		return ""
	}
	return fmt.Sprintf("scaled: counted %.0f%% of the time", 100*f)
}

// statsByCgroup is stats --by cgroup: every counter per cgroup, with the
// derived ratios only where their events were counted as one group.
func statsByCgroup(ctx context.Context, g *globals, c *client.Client, interval time.Duration, top int) error {
	st, err := c.CgroupStats(ctx, interval, cgroupNamer(g))
	if err != nil {
		return noCgroups(c, err)
	}
	sortCgroupStats(st)
	if top > 0 && len(st) > top {
		st = st[:top]
	}
	if g.Output == "json" {
		return writeJSON(g, st)
	}
	return writeCgroupTable(g.stdout, st, nil)
}

func sortCgroupStats(st []client.CgroupStat) {
	sort.SliceStable(st, func(i, j int) bool {
		a, b := -1.0, -1.0
		if st[i].CPUPercent != nil {
			a = *st[i].CPUPercent
		}
		if st[j].CPUPercent != nil {
			b = *st[j].CPUPercent
		}
		return a > b
	})
}

// cgroupColumns are the metrics of the per-cgroup table, when measured.
var cgroupColumns = []pmu.PresetID{pmu.SW_CONTEXT_SWITCHES, pmu.SW_PAGE_FAULTS, pmu.SW_CPU_MIGRATIONS, pmu.PAPI_TOT_CYC, pmu.PAPI_TOT_INS, pmu.PAPI_L3_TCM}

// writeCgroupTable prints one line per cgroup (rates per second; "*" marks
// a scaled value) and, when procs is set, its processes under it.
func writeCgroupTable(w io.Writer, st []client.CgroupStat, procs map[string][]client.ProcStat) error {
	var cols []pmu.PresetID
	for _, id := range cgroupColumns {
		for _, s := range st {
			if _, ok := s.Counter(id); ok {
				cols = append(cols, id)
				break
			}
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprint(tw, "CGROUP\tCPU%")
	for _, id := range cols {
		fmt.Fprintf(tw, "\t%s/s", client.MetricName(id))
	}
	fmt.Fprint(tw, "\tIPC\tMPKI\n")
	scaled := false
	for _, s := range st {
		cpu := "n/a"
		if s.CPUPercent != nil {
			cpu = strconv.FormatFloat(*s.CPUPercent, 'f', 1, 64)
		}
		fmt.Fprintf(tw, "%s\t%s", s.Cgroup, cpu)
		for _, id := range cols {
			v, ok := s.Counter(id)
			switch {
			case !ok:
				fmt.Fprint(tw, "\tn/a")
			case v.Scaled:
				scaled = true
				fmt.Fprintf(tw, "\t%s*", fmtRate(v.Rate))
			default:
				fmt.Fprintf(tw, "\t%s", fmtRate(v.Rate))
			}
		}
		for _, k := range []string{"ipc", "mpki"} {
			r, ok := s.Ratios[k]
			switch {
			case !ok:
				fmt.Fprint(tw, "\t-")
			case r.Value == nil:
				fmt.Fprint(tw, "\tno group") // events not counted together: no ratio
			default:
				fmt.Fprintf(tw, "\t%.2f", *r.Value)
			}
		}
		fmt.Fprintln(tw)
		for _, p := range procs[s.Cgroup] {
			cpu := "n/a"
			if p.CPUPercent != nil {
				cpu = strconv.FormatFloat(*p.CPUPercent, 'f', 1, 64)
			}
			fmt.Fprintf(tw, "  %d %s\t%s\n", p.PID, p.Comm, cpu)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if scaled {
		fmt.Fprintln(w, "* scaled: the counter was multiplexed and counted only part of the time")
	}
	return nil
}

// procCgroups maps the processes of st to their cgroup v2 path, read
// from <root>/proc/<pid>/cgroup.
func procCgroups(root string, procs []client.ProcStat) map[string][]client.ProcStat {
	out := map[string][]client.ProcStat{}
	for _, p := range procs {
		b, err := os.ReadFile(filepath.Join(root, "proc", strconv.Itoa(p.PID), "cgroup"))
		if err != nil {
			continue
		}
		cg := cgroup2.ProcCgroup(b)
		if cg == "" {
			continue
		}
		out[cg] = append(out[cg], p)
	}
	return out
}

// topByCgroup is top --by cgroup: every interval, the cgroups by on-CPU
// time with the watched processes nested under their cgroup.
func topByCgroup(ctx context.Context, g *globals, o topOptions) error {
	c, err := client.Open(o.Open)
	if err != nil {
		return err
	}
	defer c.Close()
	n := cgroupNamer(g)
	prev, err := c.Cgroups(n)
	if err != nil {
		return noCgroups(c, err)
	}
	p0, err := c.SamplePMU()
	if err != nil {
		return err
	}
	procs0, _ := c.Processes()
	t0 := time.Now()
	for i := 0; o.Iterations == 0 || i < o.Iterations; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.Interval):
		}
		cur, err := c.Cgroups(n)
		if err != nil {
			return err
		}
		p1, err := c.SamplePMU()
		if err != nil {
			return err
		}
		procs1, _ := c.Processes()
		now := time.Now()
		st := client.CgroupDelta(prev, cur, now.Sub(t0))
		ps := c.Delta(p0, p1, procs0, procs1)
		prev, p0, procs0, t0 = cur, p1, procs1, now
		sortCgroupStats(st)
		if o.K > 0 && len(st) > o.K {
			st = st[:o.K]
		}
		clear := "\x1b[H\x1b[2J"
		if o.Plain {
			clear = "\n"
		}
		fmt.Fprintf(g.stdout, "%skushm top --by cgroup: %s  %s\n", clear, c.Path(), now.Format("15:04:05"))
		if err := writeCgroupTable(g.stdout, st, procCgroups(g.Root, ps.Procs)); err != nil {
			return err
		}
	}
	return nil
}
