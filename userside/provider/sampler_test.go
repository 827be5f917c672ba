// SPDX-License-Identifier: Apache-2.0

package provider

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/cpubpf"
	"github.com/kushm/kushm/msr"
	"github.com/kushm/kushm/pmu"
)

func TestParseSamplerMode(t *testing.T) {
	for m := SamplerAuto; m <= SamplerRead; m++ {
		if got, err := ParseSamplerMode(m.String()); err != nil || got != m {
			t.Errorf("ParseSamplerMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseSamplerMode("ipi"); !errors.Is(err, ErrConfig) {
		t.Errorf("ParseSamplerMode(ipi) = %v, want ErrConfig", err)
	}
}

// Without root or with --cpu-sampler read, the daemon reads and says why.
func TestSamplerFallbackReasons(t *testing.T) {
	p := newTest(t, Config{Sampler: SamplerRead, Cgroups: CgroupOff})
	if got := p.Sampler(); !strings.Contains(got, "--cpu-sampler read") {
		t.Errorf("Sampler() = %q", got)
	}
	if p.smp.s != nil {
		t.Error("a sampler runs with SamplerRead")
	}
	if os.Geteuid() != 0 {
		p := newTest(t, Config{Cgroups: CgroupOff})
		if got := p.Sampler(); !strings.Contains(got, "needs root") {
			t.Errorf("Sampler() as non-root = %q", got)
		}
	}
}

// samplerProvider runs a provider whose per-CPU rows come from the BPF
// sampler, or skips where the kernel cannot run it.
func samplerProvider(t *testing.T) *Provider {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the BPF sampler needs root")
	}
	p, err := New(Config{Path: t.TempDir() + "/kushm", Interval: 10 * time.Millisecond, Sampler: SamplerBPF,
		Cgroups: CgroupOff, Watch: Watch{None: true}})
	if errors.Is(err, cpubpf.ErrNotSupported) {
		t.Skipf("BPF sampler: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	softwareOK(t, p)
	return p
}

// The rows the sampler fills agree with the provider's own readers read
// directly afterwards: never above them, and behind by no more than the
// time between the sample and the read; every row's time is its CPU's
// sample time and advances; the MSRs the perf msr PMU serves come with
// the sample.
func TestSamplerRows(t *testing.T) {
	p := samplerProvider(t)
	if got := p.Sampler(); !strings.HasPrefix(got, "bpf") {
		t.Fatalf("Sampler() = %q", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	time.Sleep(300 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A timer late by three intervals on a loaded machine makes a miss
	// (seen once on a 16-CPU guest): the sampler must still be the path
	// of nearly every row.
	if rows := p.stats.Ticks * uint64(len(p.CPUs())); p.stats.SamplerMisses*20 > rows {
		t.Errorf("%d of %d rows read by the daemon although the sampler ran", p.stats.SamplerMisses, rows)
	}
	var snap atomicarr.Snapshot
	for ci, cpu := range p.CPUs() {
		r := p.pmuR[ci]
		if r == nil {
			continue
		}
		if err := p.pmuArr.Snapshot(cpu, &snap); err != nil {
			t.Fatal(err)
		}
		direct := make([]pmu.Value, len(p.pmuIDs))
		if err := r.Read(direct); err != nil {
			t.Fatal(err)
		}
		now := monoNs()
		if snap.TimeNs != p.smp.last[ci] || snap.TimeNs > now || now-snap.TimeNs > uint64(time.Second) {
			t.Errorf("cpu %d: row time %d, sample %d, now %d", cpu, snap.TimeNs, p.smp.last[ci], now)
		}
		for _, v := range direct {
			if !v.OK {
				continue
			}
			if !snap.Has(int(v.Preset)) {
				t.Errorf("cpu %d: %s read directly but n/a in the row", cpu, v.Preset)
				continue
			}
			got := snap.Vals[v.Preset]
			if got > v.Scaled {
				t.Errorf("cpu %d: %s row %d above the later direct read %d", cpu, v.Preset, got, v.Scaled)
			}
			if v.Preset == pmu.SW_TASK_CLOCK {
				// Time counters: behind by at most the time since the sample.
				if lag := v.Scaled - got; lag > now-snap.TimeNs+uint64(time.Millisecond) {
					t.Errorf("cpu %d: %s row behind the direct read by %d ns, the sample is %d ns old",
						cpu, v.Preset, lag, now-snap.TimeNs)
				}
			}
		}
		if p.msrR == nil {
			continue
		}
		for _, id := range p.msrIDs[ci] {
			if p.msrR.PerfFD(cpu, id) < 0 {
				continue // not read through the perf msr PMU: not sampled
			}
			var ms atomicarr.Snapshot
			if err := p.msrArr.Snapshot(cpu, &ms); err != nil {
				t.Fatal(err)
			}
			raw, _, err := p.msrR.ReadRaw(cpu, id)
			if err != nil {
				t.Fatal(err)
			}
			// TSC counts always; SMI_COUNT may stay 0 (no SMI yet).
			if !ms.Has(int(id)) || (id == msr.TSC && ms.Vals[id] == 0) || ms.Vals[id] > raw.Value || ms.TimeNs != snap.TimeNs {
				t.Errorf("cpu %d: %s row %d (valid %v, time %d) vs direct %d (pmu row time %d)",
					cpu, msr.ID(id), ms.Vals[id], ms.Has(int(id)), ms.TimeNs, raw.Value, snap.TimeNs)
			}
		}
	}
}

// A sampler that stops (here: closed) leaves the rows to the daemon's
// reads: they keep advancing, the misses are counted.
func TestSamplerStaleFallsBack(t *testing.T) {
	p := samplerProvider(t)
	if err := p.Sample(); err != nil {
		t.Fatal(err)
	}
	p.smp.s.Close()
	var before, after atomicarr.Snapshot
	cpu := p.CPUs()[0]
	if err := p.pmuArr.Snapshot(cpu, &before); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	misses := p.stats.SamplerMisses
	if err := p.Sample(); err != nil {
		t.Fatal(err)
	}
	if err := p.pmuArr.Snapshot(cpu, &after); err != nil {
		t.Fatal(err)
	}
	if p.stats.SamplerMisses <= misses {
		t.Error("no miss counted with the sampler closed")
	}
	if after.TimeNs <= before.TimeNs || after.Vals[pmu.SW_TASK_CLOCK] <= before.Vals[pmu.SW_TASK_CLOCK] {
		t.Errorf("row did not advance from the daemon's read: %d/%d then %d/%d", before.TimeNs,
			before.Vals[pmu.SW_TASK_CLOCK], after.TimeNs, after.Vals[pmu.SW_TASK_CLOCK])
	}
}

// TestVMSampler runs the provider's sampler tests in the qemu guests.
func TestVMSampler(t *testing.T) {
	t.Run("rows", TestSamplerRows)
	t.Run("stale", TestSamplerStaleFallsBack)
	t.Run("control", TestSamplerFollowsControlInterval)
}

// A user lowering or raising the interval through the control file
// changes the sampler's timers too: at 200 ms the samples of 400 ms are
// far fewer than at 10 ms.
func TestSamplerFollowsControlInterval(t *testing.T) {
	p := samplerProvider(t)
	_, b := openControl(t, p)
	interval := (*uint32)(unsafe.Pointer(&b[abi.ControlIntervalUsOff]))
	cpu := p.CPUs()[0]
	samples := func() uint64 {
		var smp cpubpf.Sample
		if err := p.smp.s.Read(cpu, &smp); err != nil {
			t.Fatal(err)
		}
		return smp.Samples
	}
	count := func() uint64 {
		// Sample applies the interval to the timers; the old period's
		// last expiry passes first.
		p.readControl()
		if err := p.Sample(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(250 * time.Millisecond)
		a := samples()
		time.Sleep(400 * time.Millisecond)
		return samples() - a
	}
	fast := count()
	atomic.StoreUint32(interval, 200_000) // µs
	slow := count()
	if p.smp.iv != 200*time.Millisecond {
		t.Fatalf("sampler interval %v after the control's 200 ms", p.smp.iv)
	}
	if fast < 15 || slow > 4 {
		t.Errorf("samples in 400 ms: %d at 10 ms, %d at 200 ms", fast, slow)
	}
}
