package main

import (
	"sort"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/userside/client"
)

// metricsOptions are the /metrics settings of serve and web.
type metricsOptions struct {
	// CgroupLimit bounds the cgroup label values: the first CgroupLimit
	// cgroups seen keep their own series while they exist; the rest are
	// added into cgroup="other" (and counted).
	CgroupLimit int
	// TopProcesses exports per-process series for the K processes with
	// the most on-CPU time (0: none).
	TopProcesses int
}

const defaultCgroupSeriesLimit = 200

func addMetricsFlags(f *pflag.FlagSet, o *metricsOptions) {
	f.IntVar(&o.CgroupLimit, "metrics-cgroups", defaultCgroupSeriesLimit, "most cgroups with their own /metrics series; the others are summed into cgroup=\"other\"")
	f.IntVar(&o.TopProcesses, "metrics-top-processes", 0, "export per-process series for the K processes with the most CPU time (0: none)")
}

// cgroupMetricNames: kushm_cgroup_<name>; on-CPU time is in seconds.
var cgroupMetricNames = func() map[int]string {
	m := map[int]string{abi.ProcCounterRuntime: "cpu_seconds_total"}
	for id, n := range metricNames {
		if pmu.PresetID(id) != pmu.SW_TASK_CLOCK {
			m[id] = n
		}
	}
	return m
}()

// cgroupCollector exports the cgroups section: one counter per measured
// counter per cgroup (scaled when multiplexed), with a cardinality limit.
type cgroupCollector struct {
	c     *client.Client
	namer client.CgroupNamer
	o     metricsOptions
	descs map[int]*prometheus.Desc
	procs map[int]*prometheus.Desc
	over  *prometheus.Desc
	rows  *prometheus.Desc

	mu       sync.Mutex
	admitted map[uint64]bool   // cgroups with their own series
	otherIn  map[uint64]*cgAcc // last values of the cgroups summed into "other"
	other    map[int]float64   // the "other" series, monotonic
}

type cgAcc struct{ v [abi.CgroupCounters]float64 }

func newCgroupCollector(c *client.Client, namer client.CgroupNamer, o metricsOptions) *cgroupCollector {
	col := &cgroupCollector{c: c, namer: namer, o: o, descs: map[int]*prometheus.Desc{}, procs: map[int]*prometheus.Desc{},
		admitted: map[uint64]bool{}, otherIn: map[uint64]*cgAcc{}, other: map[int]float64{}}
	for i, n := range cgroupMetricNames {
		help := "On-CPU time of the cgroup's tasks."
		if i != abi.ProcCounterRuntime {
			pr, _ := pmu.PresetID(i).Preset()
			help = pr.Description + " (" + pr.Name + "), charged to the cgroup of the task that ran; scaled when multiplexed."
		}
		col.descs[i] = prometheus.NewDesc("kushm_cgroup_"+n, help, []string{"cgroup"}, nil)
		col.procs[i] = prometheus.NewDesc("kushm_process_"+n, "Per process (top processes by CPU time): "+help, []string{"pid", "comm"}, nil)
	}
	col.over = prometheus.NewDesc("kushm_cgroup_series_overflow", "Cgroups summed into cgroup=\"other\" because of the series limit.", nil, nil)
	col.rows = prometheus.NewDesc("kushm_cgroups", "Rows in the region's cgroups section.", nil, nil)
	return col
}

// Describe implements prometheus.Collector.
func (col *cgroupCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range col.descs {
		ch <- d
	}
	for _, d := range col.procs {
		ch <- d
	}
	ch <- col.over
	ch <- col.rows
}

func cgValue(i int, v uint64) float64 {
	if i == abi.ProcCounterRuntime {
		return float64(v) / 1e9
	}
	return float64(v)
}

// Collect implements prometheus.Collector.
func (col *cgroupCollector) Collect(ch chan<- prometheus.Metric) {
	rows, err := col.c.Cgroups(col.namer)
	if err == nil {
		col.collectCgroups(ch, rows)
	}
	if col.o.TopProcesses > 0 {
		col.collectProcs(ch)
	}
}

func (col *cgroupCollector) collectCgroups(ch chan<- prometheus.Metric, rows []client.Cgroup) {
	col.mu.Lock()
	defer col.mu.Unlock()
	live := make(map[uint64]bool, len(rows))
	for _, r := range rows {
		live[r.ID] = true
	}
	for id := range col.admitted {
		if !live[id] {
			delete(col.admitted, id) // removed: its slot is free again
		}
	}
	for id := range col.otherIn {
		if !live[id] {
			delete(col.otherIn, id) // its counts stay in "other"
		}
	}
	// Sticky admission, oldest first: a cgroup never moves between its
	// own series and "other" while it exists, so every series stays
	// monotonic.
	sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
	overflow := 0
	for _, r := range rows {
		own := col.admitted[r.ID]
		if !own && col.otherIn[r.ID] == nil && r.ID != abi.CgroupKeyOverflow && len(col.admitted) < col.o.CgroupLimit {
			col.admitted[r.ID] = true
			own = true
		}
		if !own {
			overflow++
			col.addOther(r)
			continue
		}
		for i, d := range col.descs {
			if v, _, ok := r.Count(i); ok {
				ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, cgValue(i, v), r.Path)
			}
		}
	}
	for i, v := range col.other {
		ch <- prometheus.MustNewConstMetric(col.descs[i], prometheus.CounterValue, v, "other")
	}
	ch <- prometheus.MustNewConstMetric(col.over, prometheus.GaugeValue, float64(overflow))
	ch <- prometheus.MustNewConstMetric(col.rows, prometheus.GaugeValue, float64(len(rows)))
}

// addOther adds r's growth since the last scrape into the "other" series.
func (col *cgroupCollector) addOther(r client.Cgroup) {
	last := col.otherIn[r.ID]
	if last == nil {
		last = &cgAcc{}
		col.otherIn[r.ID] = last
	}
	for i := range col.descs {
		v, _, ok := r.Count(i)
		if !ok {
			continue
		}
		f := cgValue(i, v)
		if d := f - last.v[i]; d > 0 {
			col.other[i] += d
		}
		last.v[i] = f
	}
}

func (col *cgroupCollector) collectProcs(ch chan<- prometheus.Metric) {
	procs, err := col.c.Processes()
	if err != nil {
		return
	}
	rt := abi.ProcCounterRuntime
	sort.SliceStable(procs, func(i, j int) bool { return procs[i].Counters[rt] > procs[j].Counters[rt] })
	if len(procs) > col.o.TopProcesses {
		procs = procs[:col.o.TopProcesses]
	}
	for _, p := range procs {
		for i, d := range col.procs {
			if i < abi.ProcCounters && p.Has(i) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, cgValue(i, p.Counters[i]), strconv.Itoa(p.PID), p.Comm)
			}
		}
	}
}
