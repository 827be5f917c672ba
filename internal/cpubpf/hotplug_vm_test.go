// SPDX-License-Identifier: Apache-2.0

package cpubpf

import (
	"slices"
	"testing"
	"time"

	"github.com/kushm/kushm/tools/vmtest"
)

// TestVMSamplerHotplug takes CPU 1 offline and back in the qemu guest
// (never on a host): while it is offline its samples stop and its timer,
// which the kernel moved to another CPU, stops there (Moved) instead of
// sampling that CPU twice; back online, the CPU has no timer until
// Rearm restarts it, after which its samples advance again.
func TestVMSamplerHotplug(t *testing.T) {
	set := vmtest.CPUHotplug(t, 1)
	s, _, cpus := openSampler(t, 10*time.Millisecond)
	if !slices.Contains(cpus, 0) || !slices.Contains(cpus, 1) {
		t.Skipf("needs CPUs 0 and 1 online, have %v", cpus)
	}
	samples := func(cpu int) uint64 {
		t.Helper()
		var smp Sample
		if err := s.Read(cpu, &smp); err != nil {
			t.Fatalf("cpu %d: %v", cpu, err)
		}
		return smp.Samples
	}
	time.Sleep(100 * time.Millisecond)
	if samples(1) == 0 {
		t.Fatal("cpu 1: no sample before going offline")
	}
	set(false)
	time.Sleep(100 * time.Millisecond) // the moved timer fires once and stops
	off, zero := samples(1), samples(0)
	time.Sleep(300 * time.Millisecond)
	if got := samples(1); got != off {
		t.Errorf("cpu 1 offline: samples went from %d to %d", off, got)
	}
	// One timer on CPU 0, not two: about 30 samples in 300 ms at 10 ms.
	if got := samples(0) - zero; got > 45 {
		t.Errorf("cpu 0: %d samples in 300 ms at 10 ms: CPU 1's timer samples it too", got)
	}
	if n, err := s.Moved(); err != nil || n != 1 {
		t.Errorf("Moved = %d, %v; want 1 (the timer fired on CPU 0 once and stopped)", n, err)
	}
	set(true)
	time.Sleep(200 * time.Millisecond)
	if got := samples(1); got != off {
		t.Errorf("cpu 1 back online, not re-armed: samples went from %d to %d", off, got)
	}
	started, err := s.Rearm([]int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(started, []int{1}) {
		t.Fatalf("Rearm restarted %v, want [1]", started)
	}
	back := samples(1)
	time.Sleep(200 * time.Millisecond)
	if got := samples(1) - back; got < 5 {
		t.Errorf("cpu 1 re-armed: %d samples in 200 ms at 10 ms", got)
	}
	if again, err := s.Rearm([]int{0, 1}); err != nil || len(again) != 0 {
		t.Errorf("Rearm with every timer running = %v, %v; want none", again, err)
	}
	if n, err := s.RearmErrors(); err != nil || n != 0 {
		t.Errorf("RearmErrors = %d, %v", n, err)
	}
}
