package client

import (
	"github.com/kushm/kushm/internal/abi"
)

// CPUTime is one CPU's time accounting over an interval, each in % of
// the interval (of one CPU): from the cputime section, which the
// producers fill from the kernel's cpustat. Busy is user + system (irq
// and softirq included); iowait is idle time with I/O outstanding; steal
// is time the hypervisor gave to others. A value is null when not
// measured, never 0.
type CPUTime struct {
	CPU    int      `json:"cpu"`
	Busy   *float64 `json:"busy_percent"`
	User   *float64 `json:"user_percent"`
	System *float64 `json:"system_percent"`
	Idle   *float64 `json:"idle_percent"`
	IOWait *float64 `json:"iowait_percent"`
	Steal  *float64 `json:"steal_percent"`
}

// SampleCPUTime snapshots every row of the cputime section.
func (c *Client) SampleCPUTime() (*CPUSample, error) {
	return guarded(func() (*CPUSample, error) { return sample(c.cpuT, "cputime") })
}

// CPUTimeDelta computes each CPU's time shares between two samples of
// the cputime section. A CPU whose row did not change time (no new
// sample) or could not be read has null shares.
func CPUTimeDelta(t0, t1 *CPUSample) []CPUTime {
	n := min(len(t0.Rows), len(t1.Rows))
	out := make([]CPUTime, 0, n)
	for cpu := 0; cpu < n; cpu++ {
		ct := CPUTime{CPU: cpu}
		a, b := &t0.Rows[cpu], &t1.Rows[cpu]
		if t0.Err[cpu] == nil && t1.Err[cpu] == nil && b.TimeNs > a.TimeNs {
			dt := float64(b.TimeNs - a.TimeNs)
			share := func(slot int) *float64 {
				if !a.Has(slot) || !b.Has(slot) || b.Vals[slot] < a.Vals[slot] {
					return nil
				}
				v := float64(b.Vals[slot]-a.Vals[slot]) / dt * 100
				return &v
			}
			ct.Busy, ct.User, ct.System = share(abi.CPUTimeBusy), share(abi.CPUTimeUser), share(abi.CPUTimeSystem)
			ct.Idle, ct.IOWait, ct.Steal = share(abi.CPUTimeIdle), share(abi.CPUTimeIOWait), share(abi.CPUTimeSteal)
		}
		if b.Valid == 0 && b.TimeNs == 0 {
			continue // a CPU never sampled (offline, or not possible)
		}
		out = append(out, ct)
	}
	return out
}
