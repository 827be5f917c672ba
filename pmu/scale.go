package pmu

import "math/bits"

// Scale corrects a count for multiplexing: when the kernel had more events
// than counters, an event ran only for running of its enabled ns, and
// value × enabled / running estimates the full count. ratio is
// running / enabled (1: never multiplexed). With running == 0 the event
// never ran: scaled and ratio are 0. With enabled == running == 0 the
// kernel did not track times (cgroup events of a cgroup whose time is not
// accounted, e.g. the root cgroup): the value is taken as is, ratio 1.
func Scale(value, enabled, running uint64) (scaled uint64, ratio float64) {
	if enabled == 0 && running == 0 {
		return value, 1
	}
	if running == 0 || enabled == 0 {
		return 0, 0
	}
	if running >= enabled {
		return value, 1
	}
	hi, lo := bits.Mul64(value, enabled)
	if hi >= running {
		return ^uint64(0), float64(running) / float64(enabled) // saturate
	}
	q, _ := bits.Div64(hi, lo, running)
	return q, float64(running) / float64(enabled)
}

// Delta is the scaled increase of a counter between two readings of the
// same Reader: (Δraw) × (Δenabled) / (Δrunning). Scaling the interval
// rather than the totals gives the right answer when the multiplexing
// ratio changes over time. ok is false when the event did not run in the
// interval (or prev is not older than cur).
func Delta(prev, cur Value) (delta uint64, ratio float64, ok bool) {
	if cur.OK && cur.Enabled == 0 && cur.Running == 0 && cur.Raw >= prev.Raw {
		return cur.Raw - prev.Raw, 1, true // times not tracked (see Scale)
	}
	if !cur.OK || cur.Raw < prev.Raw || cur.Enabled < prev.Enabled || cur.Running <= prev.Running {
		return 0, 0, false
	}
	d, r := Scale(cur.Raw-prev.Raw, cur.Enabled-prev.Enabled, cur.Running-prev.Running)
	return d, r, true
}
