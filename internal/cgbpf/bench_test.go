// SPDX-License-Identifier: Apache-2.0

package cgbpf

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/kushm/kushm/internal/cgroup2"
	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/tools/cgwork"
)

// BenchmarkPingPong is a pipe ping-pong round trip between two threads
// (like `perf bench sched pipe`) with the per-cgroup program detached
// (off) and attached (on), in one run: the difference is what the
// sched_switch program adds; switches/op says how many context switches
// one round trip costs, so the added ns per switch is
// (on - off) / switches. Both threads run on one CPU (benchCPU), so a
// round trip is two switches.
// benchCPU is the CPU both threads of the ping-pong run on.
const benchCPU = 1

func BenchmarkPingPong(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	ncpus, err := possible()
	if err != nil {
		b.Fatal(err)
	}
	evs, done := openSWBench(b)
	defer done()
	b.Run("mode=off", func(b *testing.B) {
		if err := cgwork.PingPongOn(b.N, benchCPU); err != nil {
			b.Fatal(err)
		}
	})
	// No perf event: what the provider loads on a machine without a
	// hardware PMU (page faults come from the task itself).
	c, err := Open(Config{NCPUs: ncpus, Capacity: 1024})
	if err != nil {
		b.Skipf("BPF: %v", err)
	}
	defer c.Close()
	b.Run("mode=on", func(b *testing.B) {
		s0, _ := c.Stats()
		b.ResetTimer()
		if err := cgwork.PingPongOn(b.N, benchCPU); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s1, _ := c.Stats()
		b.ReportMetric(float64(s1.Switches-s0.Switches)/float64(b.N), "switches/op")
	})
	// The program's own cost per run, measured by the kernel (BPF
	// statistics add a clock read around each run, so this includes a
	// little of their own cost).
	st, err := EnableRunStats()
	if err != nil {
		b.Logf("no BPF run-time statistics: %v", err)
		return
	}
	defer st.Close()
	progCost := func(c *Counter) func(b *testing.B) {
		return func(b *testing.B) {
			s0, _ := c.Stats() // outside the program's measured window
			t0, n0, _ := c.SwitchCost()
			if err := cgwork.PingPongOn(b.N, benchCPU); err != nil {
				b.Fatal(err)
			}
			t1, n1, _ := c.SwitchCost()
			s1, _ := c.Stats()
			if n1 > n0 {
				b.ReportMetric(float64(t1-t0)/float64(n1-n0), "prog-ns/switch")
				// The migrate program runs beside it, off the switch
				// path: how often, on both CPUs (the pinned ping-pong
				// itself never migrates).
				b.ReportMetric(float64(s1.Migrations-s0.Migrations)/float64(n1-n0), "migrations/switch")
			}
		}
	}
	b.Run("mode=on-stats", progCost(c))
	// The migrate program's own cost per run: this thread moved between
	// two CPUs b.N times (sched_setaffinity; each move one run).
	if cpus, err := pmu.OnlineCPUs(""); err == nil && len(cpus) >= 2 {
		b.Run("mode=migrate-stats", func(b *testing.B) {
			t0, n0, _ := c.MigrateCost()
			if err := cgwork.Migrate(b.N); err != nil {
				b.Fatal(err)
			}
			t1, n1, _ := c.MigrateCost()
			if n1 > n0 {
				b.ReportMetric(float64(t1-t0)/float64(n1-n0), "prog-ns/migration")
			}
		})
	}
	// Processes in two cgroups ping-pong on one CPU (the two pending
	// slots of the CPU hold both: no flush), then in three (the cache's
	// worst case: most switches come out of a cgroup neither slot holds,
	// a flush: one hash lookup, as every switch had before the cache).
	// flushes/switch says how many.
	if dirs, err := benchCgroups(3); err != nil {
		b.Logf("cgroups: %v", err)
	} else {
		defer func() {
			for _, d := range dirs {
				os.Remove(d)
			}
		}()
		for _, n := range []int{2, 3} {
			b.Run(fmt.Sprintf("mode=on-%dcgroups-stats", n), func(b *testing.B) {
				t0, n0, _ := c.SwitchCost()
				s0, _ := c.Stats()
				errc := make(chan error, n)
				for _, d := range dirs[:n] {
					go func(d string) {
						errc <- cgwork.Run(d, cgwork.Spec{PingPongs: b.N, Pin: benchCPU + 1})
					}(d)
				}
				for range dirs[:n] {
					if err := <-errc; err != nil {
						b.Fatal(err)
					}
				}
				t1, n1, _ := c.SwitchCost()
				s1, _ := c.Stats()
				if n1 > n0 {
					b.ReportMetric(float64(t1-t0)/float64(n1-n0), "prog-ns/switch")
					b.ReportMetric(float64(s1.Flushes-s0.Flushes)/float64(n1-n0), "flushes/switch")
				}
			})
		}
	}
	// The floor of that measurement, in the same run: an empty
	// tp_btf/sched_switch program (the trampoline and the statistics'
	// own clock reads).
	if e, err := openEmpty(); err != nil {
		b.Logf("empty program: %v", err)
	} else {
		b.Run("mode=empty-stats", func(b *testing.B) {
			t0, n0 := e.cost(b)
			if err := cgwork.PingPongOn(b.N, benchCPU); err != nil {
				b.Fatal(err)
			}
			t1, n1 := e.cost(b)
			if n1 > n0 {
				b.ReportMetric(float64(t1-t0)/float64(n1-n0), "prog-ns/switch")
			}
		})
		e.close()
	}
	// With one per-CPU perf event read per switch (a software event
	// here; each hardware preset costs one such read on a PMU machine).
	c.Close()
	c1, err := Open(Config{NCPUs: ncpus, Capacity: 1024, Events: evs})
	if err != nil {
		b.Fatal(err)
	}
	defer c1.Close()
	b.Run("mode=on-1event-stats", progCost(c1))
}

// benchCgroups creates n fresh cgroups under the cgroup2 mount.
func benchCgroups(n int) ([]string, error) {
	mnt, _, err := cgroup2.FindMount("/")
	if err != nil {
		return nil, err
	}
	var dirs []string
	for i := 0; i < n; i++ {
		d := filepath.Join(mnt, fmt.Sprintf("kushm-cgbench-%d-%d", os.Getpid(), i))
		if err := os.Mkdir(d, 0o755); err != nil {
			return dirs, err
		}
		dirs = append(dirs, d)
	}
	return dirs, nil
}

// emptyProg is an attached tp_btf/sched_switch program that only returns.
type emptyProg struct {
	p *ebpf.Program
	l link.Link
}

// emptySpec is a tp_btf/sched_switch program that only returns.
func emptySpec() *ebpf.ProgramSpec {
	return &ebpf.ProgramSpec{
		Type: ebpf.Tracing, AttachType: ebpf.AttachTraceRawTp, AttachTo: "sched_switch",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		License:      "GPL",
	}
}

func openEmpty() (*emptyProg, error) {
	p, err := ebpf.NewProgram(emptySpec())
	if err != nil {
		return nil, err
	}
	l, err := link.AttachTracing(link.TracingOptions{Program: p})
	if err != nil {
		p.Close()
		return nil, err
	}
	return &emptyProg{p, l}, nil
}

func (e *emptyProg) cost(b *testing.B) (time.Duration, uint64) {
	st, err := e.p.Stats()
	if err != nil {
		b.Fatal(err)
	}
	return st.Runtime, st.RunCount
}

func (e *emptyProg) close() { e.l.Close(); e.p.Close() }
