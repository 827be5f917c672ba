// SPDX-License-Identifier: Apache-2.0

package cpubpf

import (
	"errors"
	"os"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/kushm/kushm/internal/sys"
	"github.com/kushm/kushm/internal/sys/perfsys"
	"github.com/kushm/kushm/pmu"
)

// The layout Read relies on: seq first, the struct a whole number of
// words (the array's stride), the C struct's size.
func TestSampleLayout(t *testing.T) {
	if off := unsafe.Offsetof(Sample{}.Seq); off != 0 {
		t.Fatalf("seq at offset %d, Read loads it at 0", off)
	}
	if sampleSize%8 != 0 {
		t.Fatalf("sample size %d is not a multiple of 8", sampleSize)
	}
	if want := 8*8 + 3*8*Slots; sampleSize != want {
		t.Fatalf("sample size %d, bpf/cpusample.bpf.c's struct cpu_sample is %d", sampleSize, want)
	}
}

// openSampler opens two software events per CPU (context switches,
// cpu-clock) and a sampler over them at interval.
func openSampler(t *testing.T, interval time.Duration) (*Sampler, []map[int]int, []int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (BPF, CPU-wide perf events)")
	}
	ncpus, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	cpus, err := pmu.OnlineCPUs("/")
	if err != nil {
		t.Fatal(err)
	}
	configs := []uint64{3 /* PERF_COUNT_SW_CONTEXT_SWITCHES */, 0 /* PERF_COUNT_SW_CPU_CLOCK */}
	events := make([]map[int]int, len(configs))
	for k, c := range configs {
		events[k] = map[int]int{}
		for _, cpu := range cpus {
			fd, err := perfsys.Open(perfsys.Attr{Type: 1 /* software */, Config: c}, perfsys.Target{PID: -1, CPU: cpu, CgroupFD: -1}, -1, false)
			if err != nil {
				t.Skipf("software event on cpu %d: %v", cpu, err)
			}
			t.Cleanup(func() { perfsys.Close(fd) })
			if err := perfsys.Enable(fd, false); err != nil {
				t.Fatal(err)
			}
			events[k][cpu] = fd
		}
	}
	s, err := Open(Config{NCPUs: ncpus, CPUs: cpus, Events: events, Interval: interval})
	if errors.Is(err, ErrNotSupported) {
		t.Skipf("sampler: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, events, cpus
}

// Every CPU gets samples at the interval, taken on that CPU, with the
// events' values no later than a direct read made after them and the
// cpu-clock's time close to the sample's age.
func TestSamplesEveryCPU(t *testing.T) {
	s, events, cpus := openSampler(t, 10*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	var first = map[int]Sample{}
	for _, cpu := range cpus {
		var smp Sample
		if err := s.Read(cpu, &smp); err != nil {
			t.Fatalf("cpu %d: %v", cpu, err)
		}
		first[cpu] = smp
		if smp.Valid != 3 {
			t.Errorf("cpu %d: valid %#x, want both slots", cpu, smp.Valid)
		}
		// 200 ms at 10 ms: about 20 samples (a VM's timer may be late).
		if smp.Samples < 5 || smp.Samples > 40 {
			t.Errorf("cpu %d: %d samples in 200 ms at 10 ms", cpu, smp.Samples)
		}
		now := sys.MonotonicNs()
		if age := now - smp.TimeNs; smp.TimeNs > now || age > uint64(100*time.Millisecond) {
			t.Errorf("cpu %d: sample taken %d ns ago", cpu, int64(age))
		}
		for k := range events {
			var c perfsys.Count
			buf := make([]byte, 24)
			if err := perfsys.ReadOne(events[k][cpu], buf, &c); err != nil {
				t.Fatal(err)
			}
			if smp.Val[k] > c.Value || smp.Enabled[k] > c.Enabled {
				t.Errorf("cpu %d slot %d: sampled %d (enabled %d) above the later direct read %d (%d)",
					cpu, k, smp.Val[k], smp.Enabled[k], c.Value, c.Enabled)
			}
		}
		// The cpu-clock counts this CPU's time: close to its enabled time.
		if smp.Val[1] == 0 || smp.Val[1] > smp.Enabled[1]+uint64(time.Millisecond) {
			t.Errorf("cpu %d: cpu-clock %d for %d ns enabled", cpu, smp.Val[1], smp.Enabled[1])
		}
	}
	time.Sleep(100 * time.Millisecond)
	for _, cpu := range cpus {
		var smp Sample
		if err := s.Read(cpu, &smp); err != nil {
			t.Fatal(err)
		}
		f := first[cpu]
		if smp.Samples <= f.Samples || smp.TimeNs <= f.TimeNs || smp.Val[1] < f.Val[1] || smp.Val[0] < f.Val[0] {
			t.Errorf("cpu %d: no later sample or a counter went back: %+v then %+v", cpu, f, smp)
		}
	}
	if n, err := s.RearmErrors(); err != nil || n != 0 {
		t.Errorf("RearmErrors = %d, %v: a timer failed to re-arm", n, err)
	}
	if err := s.Read(-1, new(Sample)); err == nil {
		t.Error("Read(-1) succeeded")
	}
	if err := s.Read(1<<20, new(Sample)); err == nil {
		t.Error("Read(1<<20) succeeded")
	}
}

// SetInterval changes the pace: ten times the period, far fewer samples.
func TestSetInterval(t *testing.T) {
	s, _, cpus := openSampler(t, 10*time.Millisecond)
	count := func() uint64 {
		var smp Sample
		if err := s.Read(cpus[0], &smp); err != nil {
			t.Fatal(err)
		}
		return smp.Samples
	}
	time.Sleep(50 * time.Millisecond)
	a := count()
	time.Sleep(300 * time.Millisecond)
	fast := count() - a
	if err := s.SetInterval(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond) // the old period's last overflow
	b := count()
	time.Sleep(300 * time.Millisecond)
	slow := count() - b
	if fast < 10 || slow > 5 || slow >= fast {
		t.Errorf("samples in 300 ms: %d at 10 ms, %d at 100 ms", fast, slow)
	}
	if err := s.SetInterval(0); err == nil {
		t.Error("SetInterval(0) succeeded")
	}
}

func TestClosed(t *testing.T) {
	s, _, cpus := openSampler(t, 10*time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Read(cpus[0], new(Sample)); err == nil || errors.Is(err, ErrNoSample) {
		t.Errorf("Read after Close = %v, want a closed error", err)
	}
}

// TestVMSampler runs the sampler's tests in the qemu guests (make
// vmtest): 6.12 runs them; 6.1 has no BPF_F_TIMER_CPU_PIN and must skip
// with that reason, not fail to load.
func TestVMSampler(t *testing.T) {
	t.Run("every-cpu", TestSamplesEveryCPU)
	t.Run("interval", TestSetInterval)
	t.Run("closed", TestClosed)
}
