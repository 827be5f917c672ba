// SPDX-License-Identifier: Apache-2.0

package cgbpf

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf/link"

	"github.com/kushm/kushm/tools/cgwork"
)

// BenchmarkPingPongPaired measures what the issue asks for, the pipe
// ping-pong round trip with the switch program on and off, as pairs:
// one op is a round of pairedTrips round trips with the program
// detached and the same with it attached (attaching and detaching
// between them, the order alternating from op to op), and the metric is
// the median over ops of (on − off) / switches. A change of the
// machine's load between rounds cancels out of each pair, which
// BenchmarkPingPong's mode=off and mode=on, minutes apart, cannot do.
// Run it with -benchtime Nx (N rounds, e.g. 40x).
func BenchmarkPingPongPaired(b *testing.B) {
	const pairedTrips = 4000
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
	attached := true
	set := func(on bool) {
		if on == attached {
			return
		}
		if on {
			l, err := link.AttachTracing(link.TracingOptions{Program: c.objs.OnSwitch})
			if err != nil {
				b.Fatal(err)
			}
			c.links[0] = l
		} else if err := c.links[0].Close(); err != nil {
			b.Fatal(err)
		}
		attached = on
	}
	defer set(true)
	trip := func() time.Duration {
		t0 := time.Now()
		if err := cgwork.PingPongOn(pairedTrips, benchCPU); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	added := make([]float64, 0, b.N)
	var on, off time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			set(false)
			off = trip()
			set(true)
			on = trip()
		} else {
			set(true)
			on = trip()
			set(false)
			off = trip()
		}
		// Both threads on one CPU: a round trip is two switches.
		added = append(added, float64(on-off)/float64(2*pairedTrips))
	}
	b.StopTimer()
	slices.Sort(added)
	b.ReportMetric(added[len(added)/2], "added-ns/switch")
	b.ReportMetric(added[len(added)/4], "added-ns/switch-p25")
	b.ReportMetric(added[3*len(added)/4], "added-ns/switch-p75")
}
