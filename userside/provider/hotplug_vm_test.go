// SPDX-License-Identifier: Apache-2.0

package provider

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/cpubpf"
	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/tools/cgwork"
	"github.com/kushm/kushm/tools/vmtest"
)

// TestVMHotplug takes CPU 1 offline and back under a running daemon in
// the qemu guest (never on a host), with the BPF sampler and with the
// daemon's own reads:
//   - while CPU 1 is offline its pmu row is n/a (its events stopped
//     counting: no frozen value is published as a reading);
//   - once it is back its events are opened again (CPURevivals), with the
//     sampler its timer is restarted (SamplerRestarts), and its task-clock
//     grows again;
//   - its task-clock, read from the region every 5 ms throughout, never
//     goes back (the new events' counts are added to the last published).
//
// And with CPU 1 offline when the daemon starts: its rows are n/a, and
// once it comes online its events are opened (CPURevivals) and, with the
// sampler, its timer is armed (SamplerRestarts); its task-clock grows.
func TestVMHotplug(t *testing.T) {
	vmtest.Require(t)
	for _, mode := range []SamplerMode{SamplerBPF, SamplerRead} {
		t.Run(mode.String(), func(t *testing.T) { testHotplug(t, mode, false) })
		t.Run(mode.String()+"-offline-at-start", func(t *testing.T) { testHotplug(t, mode, true) })
	}
}

func testHotplug(t *testing.T, mode SamplerMode, offlineAtStart bool) {
	set := vmtest.CPUHotplug(t, 1)
	if offlineAtStart {
		set(false)
	}
	p, err := New(Config{Path: t.TempDir() + "/kushm", Interval: 10 * time.Millisecond, Sampler: mode,
		Cgroups: CgroupOff, Watch: Watch{None: true}, Logf: t.Logf})
	if errors.Is(err, cpubpf.ErrNotSupported) {
		t.Skipf("BPF sampler: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	softwareOK(t, p)
	if !slices.Contains(p.CPUs(), 1) {
		t.Skipf("CPU 1 not sampled: %v", p.CPUs())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	// The watcher: CPU 1's task-clock as published, every 5 ms.
	type seen struct {
		valid bool
		val   uint64
	}
	var (
		mu   sync.Mutex
		rows []seen
	)
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		var snap atomicarr.Snapshot
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if p.pmuArr.Snapshot(1, &snap) == nil {
				mu.Lock()
				rows = append(rows, seen{snap.Has(int(pmu.SW_TASK_CLOCK)), snap.Vals[pmu.SW_TASK_CLOCK]})
				mu.Unlock()
			}
		}
	}()
	defer func() {
		close(stop)
		<-watched
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	last := func() seen {
		mu.Lock()
		defer mu.Unlock()
		if len(rows) == 0 {
			return seen{}
		}
		return rows[len(rows)-1]
	}
	time.Sleep(200 * time.Millisecond)
	if !offlineAtStart {
		before := last()
		if !before.valid || before.val == 0 {
			t.Fatalf("CPU 1 before: task-clock %+v", before)
		}
		set(false)
		time.Sleep(400 * time.Millisecond)
	}
	if got := last(); got.valid {
		t.Errorf("CPU 1 offline: task-clock published as valid (%d)", got.val)
	}
	if n := p.OfflineCPUs(); n != 1 {
		t.Errorf("OfflineCPUs = %d with CPU 1 offline, want 1", n)
	}
	if want := "(offline when the daemon started, n/a until online: 1)"; offlineAtStart && !strings.Contains(p.InfoText(), want) {
		t.Errorf("info does not say %q:\n%s", want, p.InfoText())
	}
	set(true)
	deadline := waitRevival(t, p)
	if n := p.OfflineCPUs(); n != 0 {
		t.Errorf("OfflineCPUs = %d with every CPU back, want 0", n)
	}
	if mode == SamplerBPF {
		for p.Stats().SamplerRestarts == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := p.Stats().SamplerRestarts; n != 1 {
			t.Errorf("SamplerRestarts = %d, want 1", n)
		}
	}
	time.Sleep(100 * time.Millisecond)
	a := last()
	time.Sleep(300 * time.Millisecond)
	b := last()
	if !a.valid || !b.valid || b.val-a.val < uint64(100*time.Millisecond) || b.val < a.val {
		t.Errorf("CPU 1 back online: task-clock %+v then, 300 ms later, %+v (want it valid and growing with time)", a, b)
	}
	if m := p.Stats(); mode == SamplerBPF {
		t.Logf("misses %d, restarts %d, revivals %d", m.SamplerMisses, m.SamplerRestarts, m.CPURevivals)
	}
	mu.Lock()
	defer mu.Unlock()
	var prev uint64
	for i, r := range rows {
		if !r.valid {
			continue
		}
		if r.val < prev {
			t.Errorf("CPU 1's task-clock went back at read %d: %d after %d", i, r.val, prev)
			break
		}
		prev = r.val
	}
}

// TestVMHotplugCgroupPerf: with --cgroup-mode perf, a cgroup's work on
// CPU 1 is counted before CPU 1 goes offline and again after it is back
// (its perf cgroup events opened again), and its count goes on from
// where it was, never back.
func TestVMHotplugCgroupPerf(t *testing.T) {
	vmtest.Require(t)
	if _, err := cgwork.Mount2(); err != nil {
		t.Fatal(err)
	}
	set := vmtest.CPUHotplug(t, 1)
	ct := newCgroupTest(t)
	ct.EnableController() // the guests' hierarchy: else no perf_event controller (cgwork)
	tag := strconv.Itoa(os.Getpid())
	parent, _ := ct.Mkdir("kushm-hotplug-perf-" + tag)
	kid, kidID := ct.Mkdir(filepath.Join("kushm-hotplug-perf-"+tag, "kid"))
	p := newCgroupProvider(t, CgroupPerf, func(c *Config) { c.CgroupParent = parent; c.Logf = t.Logf })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	// CPU 1's slot of the child's row (the work's start runs on any CPU;
	// its spin on CPU 1 only).
	slots := make([]byte, p.cgroups.NSlots()*p.cgroups.ValueSize())
	clock := func() uint64 {
		t.Helper()
		time.Sleep(100 * time.Millisecond) // a few cgroup intervals
		if err := p.cgroups.Read(kidID, nil, slots); err != nil {
			t.Fatalf("the child cgroup's row: %v", err)
		}
		return binary.LittleEndian.Uint64(slots[1*p.cgroups.ValueSize()+8*int(pmu.SW_TASK_CLOCK):])
	}
	spin := cgwork.Spec{Spin: 50 * time.Millisecond, Pin: 2} // on CPU 1
	if err := cgwork.Run(kid, spin); err != nil {
		t.Fatal(err)
	}
	before := clock()
	if before < uint64(40*time.Millisecond) {
		t.Fatalf("task-clock %v after 50 ms of work on CPU 1", time.Duration(before))
	}
	set(false)
	time.Sleep(300 * time.Millisecond)
	set(true)
	waitRevival(t, p)
	if err := cgwork.Run(kid, spin); err != nil {
		t.Fatal(err)
	}
	after := clock()
	t.Logf("the child's task-clock on CPU 1: %v, then %v after CPU 1 came back and it worked 50 ms more", time.Duration(before), time.Duration(after))
	if after < before+uint64(40*time.Millisecond) {
		t.Errorf("task-clock %v before CPU 1 went offline, %v after it came back and worked 50 ms: want at least 40 ms more", time.Duration(before), time.Duration(after))
	}
}

// waitRevival waits (at most 15 s) for the daemon to open CPU 1's events
// after it came online, and returns the deadline it waited to.
func waitRevival(t *testing.T, p *Provider) time.Time {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for p.Stats().CPURevivals == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := p.Stats().CPURevivals; n != 1 {
		t.Fatalf("CPURevivals = %d after CPU 1 came online, want 1", n)
	}
	return deadline
}
