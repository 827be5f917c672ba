package msr

import "time"

// Counter extends a wrapping hardware counter (32-bit RAPL energy,
// SMI_COUNT) to 64 bits. Feed it every raw reading with its time; it adds
// (raw - last) modulo the range. A counter that wraps more than once
// between two readings cannot be told apart from one that wrapped once:
// Update flags such intervals as possibly missed wraps when MaxRate says
// that a whole range could have elapsed.
//
// The zero Counter is not usable; use NewCounter.
type Counter struct {
	rng     uint64 // 0 means 2^64
	maxRate float64
	last    uint64
	total   uint64
	lastT   time.Time
	started bool
	// Wraps counts wraparounds seen.
	Wraps uint64
	// Missed counts intervals in which a wrap may have been missed.
	Missed uint64
}

// NewCounter returns a counter for raw values that wrap at 2^width (width
// 1..64) or, if rng != 0, at rng. maxRate is the highest plausible
// increase per second (e.g. TDP in watts / joules per unit); 0 disables
// missed-wrap detection.
func NewCounter(width uint, rng uint64, maxRate float64) *Counter {
	c := &Counter{maxRate: maxRate}
	switch {
	case rng != 0:
		c.rng = rng
	case width < 64:
		c.rng = 1 << width
	}
	return c
}

// Update records raw at time now and returns the extended total (0 on the
// first call: totals count from the first reading) and whether a wrap may
// have been missed since the previous reading.
func (c *Counter) Update(raw uint64, now time.Time) (total uint64, missed bool) {
	if c.rng != 0 {
		raw %= c.rng
	}
	if !c.started {
		c.started, c.last, c.lastT = true, raw, now
		return 0, false
	}
	var d uint64
	if raw >= c.last {
		d = raw - c.last
	} else {
		c.Wraps++
		if c.rng == 0 {
			d = raw - c.last // 2^64 arithmetic
		} else {
			d = c.rng - c.last + raw
		}
	}
	if c.maxRate > 0 && c.rng != 0 {
		if dt := now.Sub(c.lastT).Seconds(); dt > 0 && dt*c.maxRate >= float64(c.rng) {
			missed = true
			c.Missed++
		}
	}
	c.total += d
	c.last, c.lastT = raw, now
	return c.total, missed
}

// Total is the extended value so far.
func (c *Counter) Total() uint64 { return c.total }

// WrapPeriod is how long the counter takes to wrap at maxRate (0 when
// unknown): sample faster than this.
func (c *Counter) WrapPeriod() time.Duration {
	if c.maxRate <= 0 || c.rng == 0 {
		return 0
	}
	return time.Duration(float64(c.rng) / c.maxRate * float64(time.Second))
}
