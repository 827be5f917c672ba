// SPDX-License-Identifier: Apache-2.0

package cgbpf

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/kushm/kushm/tools/cgwork"
)

// BenchmarkPingPongPaired measures what the issue asks for, the pipe
// ping-pong round trip with per-cgroup counting on and off, as pairs:
// one op is a round of pairedTrips round trips with the program
// detached and the same with it attached (attaching and detaching
// between them, the order alternating from op to op), and the metric is
// the median over ops of (on − off) per context switch. A change of the
// machine's load between rounds cancels out of each pair, which
// BenchmarkPingPong's mode=off and mode=on, minutes apart, cannot do.
// prog=empty does the same with an empty tp_btf/sched_switch program:
// what attaching any program to the tracepoint costs (the tracepoint's
// static branch, the probe call, the BPF run's own bookkeeping), the
// floor under prog=cgroups. Run it with -benchtime Nx (N rounds, e.g.
// 60x).
func BenchmarkPingPongPaired(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	ncpus, err := possible()
	if err != nil {
		b.Fatal(err)
	}
	c, err := Open(Config{NCPUs: ncpus, Capacity: 1024})
	if err != nil {
		b.Skipf("BPF: %v", err)
	}
	defer c.Close()
	// links[0] is the switch program's (Open attaches it first): this
	// benchmark attaches and detaches it itself.
	if err := c.links[0].Close(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if l, err := link.AttachTracing(link.TracingOptions{Program: c.objs.OnSwitch}); err == nil {
			c.links[0] = l
		}
	}()
	// Switches per round trip, as the program counts them (every CPU:
	// the two threads sharing one CPU, plus whatever else ran); the
	// empty program's runs are divided by the same number.
	perTrip := 2.0
	b.Run("prog=cgroups", func(b *testing.B) {
		perTrip = pairedRun(b, c.objs.OnSwitch, c)
	})
	empty, err := ebpf.NewProgram(emptySpec())
	if err != nil {
		b.Logf("empty program: %v", err)
		return
	}
	defer empty.Close()
	b.Run("prog=empty", func(b *testing.B) {
		pairedRun(b, empty, nil, perTrip)
	})
}

const pairedTrips = 4000

// pairedRun runs b.N pairs of pairedTrips ping-pong round trips, one
// with p detached, one with it attached, and reports the median, 25th
// and 75th percentile of the added time per switch. With c, it counts
// the switches per round trip through c's statistics and returns it;
// without, it divides by perTrip[0].
func pairedRun(b *testing.B, p *ebpf.Program, c *Counter, perTrip ...float64) float64 {
	var l link.Link
	set := func(on bool) {
		if on && l == nil {
			var err error
			if l, err = link.AttachTracing(link.TracingOptions{Program: p}); err != nil {
				b.Fatal(err)
			}
		} else if !on && l != nil {
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
			l = nil
		}
	}
	defer set(false)
	trip := func() time.Duration {
		t0 := time.Now()
		if err := cgwork.PingPongOn(pairedTrips, benchCPU); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	var switches, onTrips uint64
	onTrip := func() time.Duration {
		var s0, s1 ProgStats
		if c != nil {
			s0, _ = c.Stats()
		}
		d := trip()
		if c != nil {
			s1, _ = c.Stats()
			switches += s1.Switches - s0.Switches
			onTrips += pairedTrips
		}
		return d
	}
	added := make([]float64, 0, b.N)
	var on, off time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			set(false)
			off = trip()
			set(true)
			on = onTrip()
		} else {
			set(true)
			on = onTrip()
			set(false)
			off = trip()
		}
		added = append(added, float64(on-off)/pairedTrips)
	}
	b.StopTimer()
	per := 2.0
	if c != nil && onTrips > 0 {
		per = float64(switches) / float64(onTrips)
		b.ReportMetric(per, "switches/trip")
	} else if len(perTrip) > 0 {
		per = perTrip[0]
	}
	for i := range added {
		added[i] /= per
	}
	slices.Sort(added)
	b.ReportMetric(added[len(added)/2], "added-ns/switch")
	b.ReportMetric(added[len(added)/4], "added-ns/switch-p25")
	b.ReportMetric(added[3*len(added)/4], "added-ns/switch-p75")
	return per
}
