package provider

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/kushm/kushm/internal/cgroup2"

	"github.com/kushm/kushm/internal/sys/perfsys"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSampleTick is the CPU cost of one per-CPU sample: every
// preset requested on every CPU (those available opened as one perf
// group per CPU, one read(2) each) and every readable MSR. The
// "%cpu@100Hz" metric is that cost at 100 samples a second, in % of one
// CPU (goal ≤ 1 %).
func BenchmarkSampleTick(b *testing.B) {
	p := newTest(b, Config{Watch: Watch{None: true}})
	p.SampleCPUs()
	start := cpuTime()
	for b.Loop() {
		p.SampleCPUs()
	}
	per := float64(cpuTime()-start) / float64(b.N)
	b.ReportMetric(per, "cpu-ns/tick")
	b.ReportMetric(per*100/1e9*100, "%cpu@100Hz")
}

// BenchmarkSampleProcs is one pass of the process sampler over the
// processes of this benchmark's uid (every process of root's as root, the
// daemon's default): the readdir of /proc, each candidate's owner, each
// watched process's /proc/<pid>/stat and its row. cpu-ns/proc is the
// pass's CPU time per watched process (getrusage: user + system).
func BenchmarkSampleProcs(b *testing.B) {
	uid := os.Geteuid()
	p := newTest(b, Config{Watch: Watch{UID: &uid}, Cgroups: CgroupOff})
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sampleProcs()
	start := cpuTime()
	for b.Loop() {
		p.sampleProcs()
	}
	per := float64(cpuTime()-start) / float64(b.N)
	b.ReportMetric(per, "cpu-ns/pass")
	b.ReportMetric(float64(len(p.watched)), "procs")
	b.ReportMetric(per/float64(max(1, len(p.watched))), "cpu-ns/proc")
}

// BenchmarkDaemon100Hz runs the provider's own loop at 100 Hz (10 ms)
// for one second per iteration, processes excluded, and reports the CPU
// time it used (getrusage: user + system, all threads) in % of one CPU.
// "sleep-only" is the same process waking up 100 times a second and doing
// nothing: on a VM each wake-up alone costs tens of µs of CPU, a floor
// the provider cannot go below; the difference is the sampling's cost.
func BenchmarkDaemon100Hz(b *testing.B) {
	b.Run("sleep-only", func(b *testing.B) {
		start := cpuTime()
		for i := 0; i < 100*b.N; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		b.ReportMetric(float64(cpuTime()-start)/float64(time.Duration(b.N)*time.Second)*100, "%cpu")
	})
	b.Run("provider", func(b *testing.B) {
		p := newTest(b, Config{Interval: 10 * time.Millisecond, Watch: Watch{None: true}})
		start := cpuTime()
		var ticks uint64
		for i := 0; i < b.N; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			t0 := p.Stats().Ticks
			p.Run(ctx)
			ticks += p.Stats().Ticks - t0
			cancel()
		}
		used := cpuTime() - start
		b.ReportMetric(float64(used)/float64(time.Duration(b.N)*time.Second)*100, "%cpu")
		b.ReportMetric(float64(ticks)/float64(b.N), "ticks/s")
	})
}

// BenchmarkGroupRead8 is the kernel side of a tick with 8 events per CPU:
// 8 software events (cpu-clock, task-clock, page-faults, context-switches,
// cpu-migrations, minor-faults, major-faults, alignment-faults) opened as
// one group on every CPU and read with one read(2) per CPU, plus the
// region update. It shows that the per-tick cost depends on the number
// of CPUs, not of events (compare BenchmarkSampleTick, 4 events + TSC).
func BenchmarkGroupRead8(b *testing.B) {
	p := newTest(b, Config{Watch: Watch{None: true}, NoMSR: true})
	type grp struct {
		cpu int
		fds []int
	}
	var groups []grp
	defer func() {
		for _, g := range groups {
			for _, fd := range g.fds {
				perfsys.Close(fd)
			}
		}
	}()
	for _, cpu := range p.CPUs() {
		g := grp{cpu: cpu}
		for _, cfg := range []uint64{0, 1, 2, 3, 4, 5, 6, 7} { // PERF_COUNT_SW_*
			leader := -1
			if len(g.fds) > 0 {
				leader = g.fds[0]
			}
			fd, err := perfsys.Open(perfsys.Attr{Type: perfsys.TypeSoftware, Config: cfg},
				perfsys.Target{PID: -1, CPU: cpu, CgroupFD: -1}, leader, true)
			if err != nil {
				b.Skipf("software event %d on cpu %d: %v", cfg, cpu, err)
			}
			g.fds = append(g.fds, fd)
		}
		perfsys.Enable(g.fds[0], true)
		groups = append(groups, g)
	}
	buf := make([]byte, perfsys.GroupBufSize(8))
	cs := make([]perfsys.Count, 8)
	vals := make([]uint64, 8)
	start := cpuTime()
	for b.Loop() {
		now := monoNs()
		for _, g := range groups {
			if err := perfsys.ReadGroup(g.fds[0], buf, cs); err != nil {
				b.Fatal(err)
			}
			for i := range cs {
				vals[i] = cs[i].Value
			}
			p.pmuArr.Update(g.cpu, now, 0xff, vals)
		}
	}
	per := float64(cpuTime()-start) / float64(b.N)
	b.ReportMetric(per, "cpu-ns/tick")
	b.ReportMetric(per*100/1e9*100, "%cpu@100Hz")
}

// BenchmarkCgroups1000 is the daemon's copy of 1,000 cgroups' counts from
// the BPF program's map into the region (one batched map read, one slot
// write per cgroup per CPU): "%cpu@1Hz" is its cost at the default 1 s
// cgroup interval, in % of one CPU (goal ≤ 0.5 %). Root only: it creates
// 1,000 cgroups and runs a process in each.
func BenchmarkCgroups1000(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	mnt, _, err := cgroup2.FindMount("/")
	if err != nil {
		b.Skip(err)
	}
	p := newTest(b, Config{Root: "/", Watch: Watch{None: true}, NoMSR: true, Cgroups: CgroupBPF, CgroupCapacity: 2048})
	var dirs []string
	defer func() {
		for _, d := range dirs {
			os.Remove(d)
		}
	}()
	for i := 0; i < 1000; i++ {
		d := filepath.Join(mnt, fmt.Sprintf("kushm-bench-%d-%d", os.Getpid(), i))
		if err := os.Mkdir(d, 0o755); err != nil {
			b.Fatal(err)
		}
		dirs = append(dirs, d)
		f, err := os.Open(d)
		if err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command("/bin/true")
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
		err = cmd.Run()
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sampleCgroups()
	if n := p.cgroups.Len(); n < 1000 {
		b.Fatalf("%d cgroup rows, want ≥ 1000", n)
	}
	start := cpuTime()
	for b.Loop() {
		p.sampleCgroups()
	}
	per := float64(cpuTime()-start) / float64(b.N)
	b.ReportMetric(per, "cpu-ns/read")
	b.ReportMetric(per/1e9*100, "%cpu@1Hz")
}
