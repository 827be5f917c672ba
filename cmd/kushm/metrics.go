package main

import (
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/msr"
	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/userside/client"
)

// metricNames follow node_exporter's perf collector (node_perf_*), with
// the kushm_perf_ prefix.
var metricNames = [pmu.NumPresets]string{
	pmu.PAPI_TOT_CYC:        "cpucycles_total",
	pmu.PAPI_TOT_INS:        "instructions_total",
	pmu.PAPI_REF_CYC:        "ref_cpucycles_total",
	pmu.PAPI_L1_DCM:         "cache_l1d_read_misses_total",
	pmu.PAPI_L2_TCM:         "cache_l2_misses_total",
	pmu.PAPI_L3_TCA:         "cache_refs_total",
	pmu.PAPI_L3_TCM:         "cache_misses_total",
	pmu.PAPI_BR_INS:         "branch_instructions_total",
	pmu.PAPI_BR_MSP:         "branch_misses_total",
	pmu.PAPI_TLB_DM:         "cache_tlb_data_misses_total",
	pmu.PAPI_TLB_IM:         "cache_tlb_instruction_misses_total",
	pmu.SW_TASK_CLOCK:       "task_clock_seconds_total",
	pmu.SW_PAGE_FAULTS:      "page_faults_total",
	pmu.SW_CONTEXT_SWITCHES: "context_switches_total",
	pmu.SW_CPU_MIGRATIONS:   "cpu_migrations_total",
}

// metricName is the Prometheus name of preset id.
func metricName(id pmu.PresetID) string { return "kushm_perf_" + metricNames[id] }

// collector exports a region as Prometheus metrics: one
// kushm_perf_<event>_total{cpu} per available counter (a counter that is
// not available is absent, never 0), kushm_msr_<name>{cpu} per readable
// MSR, kushm_perf_available{event} (0 or 1), the per-CPU time of the
// cputime section (kushm_cpu_busy_seconds_total{cpu},
// kushm_cpu_seconds_total{cpu,mode}, as node_exporter's node_cpu), and the
// producer's heartbeat age. It reads the region at scrape time, without a system call per
// counter.
type collector struct {
	c       *client.Client
	descs   [pmu.NumPresets]*prometheus.Desc
	msrs    [msr.NumMSRs]*prometheus.Desc
	avail   *prometheus.Desc
	age     *prometheus.Desc
	watched *prometheus.Desc
	busy    *prometheus.Desc // kushm_cpu_busy_seconds_total{cpu}
	modes   *prometheus.Desc // kushm_cpu_seconds_total{cpu,mode}
}

// cpuModes are the modes of kushm_cpu_seconds_total, by cputime slot
// (busy, their sum of user and system, has its own metric so that a sum
// over the modes counts each second once).
var cpuModes = map[int]string{
	abi.CPUTimeUser: "user", abi.CPUTimeSystem: "system", abi.CPUTimeIdle: "idle",
	abi.CPUTimeIOWait: "iowait", abi.CPUTimeSteal: "steal",
}

// newCollector returns a collector of the region c reads.
func newCollector(c *client.Client) *collector {
	col := &collector{c: c}
	for _, pr := range pmu.Presets() {
		col.descs[pr.ID] = prometheus.NewDesc(metricName(pr.ID), pr.Description+" ("+pr.Name+").", []string{"cpu"}, nil)
	}
	for _, e := range msr.Catalogue() {
		col.msrs[e.ID] = prometheus.NewDesc("kushm_msr_"+strings.ToLower(e.Name), e.Description+" (raw register value).", []string{"cpu"}, nil)
	}
	col.avail = prometheus.NewDesc("kushm_perf_available", "1 if the event is counted on this machine, 0 if not (see kushm status for why).", []string{"event"}, nil)
	col.age = prometheus.NewDesc("kushm_heartbeat_age_seconds", "Time since the producer's last heartbeat.", nil, nil)
	col.watched = prometheus.NewDesc("kushm_processes_watched", "Processes in the region's procs table.", nil, nil)
	col.busy = prometheus.NewDesc("kushm_cpu_busy_seconds_total", "Time the CPU was busy (user + nice + system + irq + softirq), from the kernel's cpustat.", []string{"cpu"}, nil)
	col.modes = prometheus.NewDesc("kushm_cpu_seconds_total", "Time the CPU spent in each mode (user includes nice; system includes irq and softirq), from the kernel's cpustat.", []string{"cpu", "mode"}, nil)
	return col
}

// Describe implements prometheus.Collector.
func (col *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range col.descs {
		ch <- d
	}
	for _, d := range col.msrs {
		ch <- d
	}
	ch <- col.avail
	ch <- col.age
	ch <- col.watched
	ch <- col.busy
	ch <- col.modes
}

// Collect implements prometheus.Collector.
func (col *collector) Collect(ch chan<- prometheus.Metric) {
	s, err := col.c.SamplePMU()
	var avail uint64
	if err == nil {
		for cpu, row := range s.Rows {
			if s.Err[cpu] != nil {
				continue
			}
			avail |= row.Valid
			for id := 0; id < pmu.NumPresets && id < len(row.Vals); id++ {
				if !row.Has(id) {
					continue
				}
				v := float64(row.Vals[id])
				if pmu.PresetID(id) == pmu.SW_TASK_CLOCK {
					v /= 1e9
				}
				ch <- prometheus.MustNewConstMetric(col.descs[id], prometheus.CounterValue, v, strconv.Itoa(cpu))
			}
		}
	}
	for id := 0; id < pmu.NumPresets; id++ {
		v := 0.0
		if avail&(1<<id) != 0 {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(col.avail, prometheus.GaugeValue, v, client.MetricName(pmu.PresetID(id)))
	}
	if m, err := col.c.SampleMSR(); err == nil {
		for cpu, row := range m.Rows {
			if m.Err[cpu] != nil {
				continue
			}
			for id := 0; id < msr.NumMSRs && id < len(row.Vals); id++ {
				if row.Has(id) {
					ch <- prometheus.MustNewConstMetric(col.msrs[id], prometheus.GaugeValue, float64(row.Vals[id]), strconv.Itoa(cpu))
				}
			}
		}
	}
	if err == nil && s.CPUTime != nil {
		t := s.CPUTime
		for cpu, row := range t.Rows {
			if t.Err[cpu] != nil {
				continue
			}
			c := strconv.Itoa(cpu)
			if row.Has(abi.CPUTimeBusy) {
				ch <- prometheus.MustNewConstMetric(col.busy, prometheus.CounterValue, float64(row.Vals[abi.CPUTimeBusy])/1e9, c)
			}
			for slot, mode := range cpuModes {
				if row.Has(slot) {
					ch <- prometheus.MustNewConstMetric(col.modes, prometheus.CounterValue, float64(row.Vals[slot])/1e9, c, mode)
				}
			}
		}
	}
	st := col.c.Status()
	ch <- prometheus.MustNewConstMetric(col.age, prometheus.GaugeValue, st.HeartbeatAge.Seconds())
	ch <- prometheus.MustNewConstMetric(col.watched, prometheus.GaugeValue, float64(st.Processes))
}
