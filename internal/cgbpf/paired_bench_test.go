// SPDX-License-Identifier: Apache-2.0

package cgbpf

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/kushm/kushm/internal/sys/perfsys"
	"github.com/kushm/kushm/tools/cgwork"
)

// BenchmarkPingPongPaired measures what the issue asks for, the pipe
// ping-pong round trip with per-cgroup counting on and off, as pairs:
// one op is a round of pairedTrips round trips with the hook detached
// and the same with it attached (attaching and detaching between them,
// the order alternating from op to op), and the metric is the median
// over ops of (on − off) per context switch. A change of the machine's
// load between rounds cancels out of each pair, which BenchmarkPingPong's
// mode=off and mode=on, minutes apart, cannot do. Run it with
// -benchtime Nx (N rounds, e.g. 60x).
//
// trips=same is the ping-pong, two threads of one process (one
// cgroup) on one CPU, as `taskset -c 1 perf bench sched pipe` runs;
// trips=across is two processes in two cgroups on one CPU
// (cgwork.Pair): every switch changes cgroup, the worst case of a hook
// that works at cgroup changes only.
//
// The hooks:
//   - prog=cgroups: kushm's tp_btf/sched_switch program (what the
//     provider loads on a machine without a hardware PMU);
//   - prog=empty: an empty tp_btf/sched_switch program, what attaching
//     any program to the tracepoint costs (the tracepoint's static
//     branch, the probe call, the BPF run's own bookkeeping): the floor
//     under prog=cgroups;
//   - prog=cgswitch-empty: an empty perf_event program on each CPU's
//     cgroup-switches software event (perfsys.SWCgroupSwitches, sample
//     period 1), the trigger `perf stat --bpf-counters --for-each-cgroup`
//     uses: it runs only at a switch between cgroups, through the perf
//     overflow path. The floor of a design that charges cgroups only
//     when the cgroup changes.
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
	empty, err := ebpf.NewProgram(emptySpec())
	if err != nil {
		b.Fatalf("empty program: %v", err)
	}
	defer empty.Close()
	cgsw, err := ebpf.NewProgram(emptyPerfEventSpec())
	if err != nil {
		b.Fatalf("empty perf_event program: %v", err)
	}
	defer cgsw.Close()

	workloads := []struct {
		name string
		trip func(b *testing.B) time.Duration
	}{
		{"same", func(b *testing.B) time.Duration {
			t0 := time.Now()
			if err := cgwork.PingPongOn(pairedTrips, benchCPU); err != nil {
				b.Fatal(err)
			}
			return time.Since(t0)
		}},
	}
	if dirs, err := benchCgroups(2); err != nil {
		b.Logf("trips=across: cgroups: %v", err)
	} else {
		defer func() {
			for _, d := range dirs {
				os.Remove(d)
			}
		}()
		pair, err := cgwork.StartPair(dirs[0], dirs[1], benchCPU)
		if err != nil {
			b.Fatal(err)
		}
		defer pair.Close()
		workloads = append(workloads, struct {
			name string
			trip func(b *testing.B) time.Duration
		}{"across", func(b *testing.B) time.Duration {
			d, err := pair.Trips(pairedTrips)
			if err != nil {
				b.Fatal(err)
			}
			return d
		}})
	}
	for _, w := range workloads {
		// Switches per round trip, as kushm's program counts them (every
		// CPU: the two sides sharing one CPU, plus whatever else ran);
		// the other hooks' times are divided by the same number.
		perTrip := 2.0
		b.Run("prog=cgroups/trips="+w.name, func(b *testing.B) {
			perTrip = pairedRun(b, tracing(c.objs.OnSwitch), c, w.trip)
		})
		b.Run("prog=empty/trips="+w.name, func(b *testing.B) {
			pairedRun(b, tracing(empty), nil, w.trip, perTrip)
		})
		b.Run("prog=cgswitch-empty/trips="+w.name, func(b *testing.B) {
			pairedRun(b, cgroupSwitchHook(cgsw, ncpus), nil, w.trip, perTrip)
		})
	}
}

const pairedTrips = 4000

// emptyPerfEventSpec is a perf_event program that only returns.
func emptyPerfEventSpec() *ebpf.ProgramSpec {
	return &ebpf.ProgramSpec{
		Type:         ebpf.PerfEvent,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		License:      "GPL",
	}
}

// tracing attaches p (a tp_btf program) to its tracepoint.
func tracing(p *ebpf.Program) func() (io.Closer, error) {
	return func() (io.Closer, error) {
		return link.AttachTracing(link.TracingOptions{Program: p})
	}
}

// cgroupSwitchHook attaches p (a perf_event program) to a cgroup-switches
// software event on each of ncpus CPUs, overflowing at every count.
func cgroupSwitchHook(p *ebpf.Program, ncpus int) func() (io.Closer, error) {
	return func() (io.Closer, error) {
		var fds perfFDs
		for cpu := 0; cpu < ncpus; cpu++ {
			fd, err := perfsys.Open(perfsys.Attr{Type: perfsys.TypeSoftware, Config: perfsys.SWCgroupSwitches, SamplePeriod: 1},
				perfsys.Target{PID: -1, CPU: cpu, CgroupFD: -1}, -1, false)
			if errors.Is(err, perfsys.ENODEV) || errors.Is(err, perfsys.ENXIO) {
				continue // a possible CPU that is not online
			}
			if err != nil {
				fds.Close()
				return nil, fmt.Errorf("cgroup-switches event on CPU %d: %w", cpu, err)
			}
			fds = append(fds, fd)
			if err := perfsys.AttachBPF(fd, p.FD()); err != nil {
				fds.Close()
				return nil, err
			}
			if err := perfsys.Enable(fd, false); err != nil {
				fds.Close()
				return nil, err
			}
		}
		return fds, nil
	}
}

type perfFDs []int

func (fds perfFDs) Close() error {
	for _, fd := range fds {
		perfsys.Close(fd)
	}
	return nil
}

// pairedRun runs b.N pairs of rounds (trip: pairedTrips round trips),
// one with the hook detached, one with it attached, and reports the
// median, 25th and 75th percentile of the added time per switch. With
// c, it counts the switches per round trip through c's statistics and
// returns it; without, it divides by perTrip[0].
func pairedRun(b *testing.B, attach func() (io.Closer, error), c *Counter, trip func(*testing.B) time.Duration, perTrip ...float64) float64 {
	var hook io.Closer
	set := func(on bool) {
		if on && hook == nil {
			var err error
			if hook, err = attach(); err != nil {
				b.Fatal(err)
			}
		} else if !on && hook != nil {
			if err := hook.Close(); err != nil {
				b.Fatal(err)
			}
			hook = nil
		}
	}
	defer set(false)
	var switches, onTrips uint64
	onTrip := func() time.Duration {
		var s0, s1 ProgStats
		if c != nil {
			s0, _ = c.Stats()
		}
		d := trip(b)
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
			off = trip(b)
			set(true)
			on = onTrip()
		} else {
			set(true)
			on = onTrip()
			set(false)
			off = trip(b)
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
