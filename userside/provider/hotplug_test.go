// SPDX-License-Identifier: Apache-2.0

package provider

import (
	"testing"
	"time"

	"github.com/kushm/kushm/pmu"
)

// dead: a growing time enabled is alive; one standing still, or failed
// reads, for deadAfter and two intervals is dead, and the first such
// reading takes the last published values as the bases.
func TestDeadEvents(t *testing.T) {
	p := &Provider{cpus: []int{3}, life: make([]cpuLife, 1), vals: make([]pmu.Value, 2)}
	p.interval.Store(int64(10 * time.Millisecond))
	l := &p.life[0]
	l.pmuLast[pmu.SW_TASK_CLOCK] = 777
	ms := uint64(time.Millisecond)
	read := func(at, enabled uint64) bool {
		p.vals[0] = pmu.Value{Preset: pmu.SW_CONTEXT_SWITCHES} // not OK: skipped
		p.vals[1] = pmu.Value{Preset: pmu.SW_TASK_CLOCK, OK: true, Enabled: enabled}
		return p.dead(0, at, true)
	}
	for i := uint64(0); i < 10; i++ {
		if read(i*10*ms, i*10*ms) {
			t.Fatalf("growing time enabled called dead at %d ms", i*10)
		}
	}
	// Standing still from 90 ms: not yet at 140 ms, dead past 140 ms.
	if read(140*ms, 90*ms) {
		t.Fatal("dead after 50 ms standing still, want more than 50")
	}
	if l.down || l.pmuBase != nil {
		t.Fatal("bases taken before the events were dead")
	}
	if !read(141*ms, 90*ms) {
		t.Fatal("not dead after 51 ms standing still")
	}
	if !l.down || l.pmuBase[pmu.SW_TASK_CLOCK] != 777 {
		t.Fatalf("down %v, base %v: want down and the last published value", l.down, l.pmuBase)
	}
	// A reading with no counting preset says nothing: never dead.
	n := &Provider{cpus: []int{0}, life: make([]cpuLife, 1), vals: make([]pmu.Value, 1)}
	n.interval.Store(int64(10 * time.Millisecond))
	n.vals[0] = pmu.Value{Preset: pmu.PAPI_TOT_CYC, Enabled: 5}
	for i := uint64(0); i < 100; i++ {
		if n.dead(0, i*10*ms, true) {
			t.Fatalf("dead at %d ms with no counting preset", i*10)
		}
	}
	// A longer interval stretches the wait to two intervals.
	q := &Provider{cpus: []int{0}, life: make([]cpuLife, 1), vals: make([]pmu.Value, 1)}
	q.interval.Store(int64(time.Second))
	if q.dead(0, 1000*ms, false) || q.dead(0, 2900*ms, false) {
		t.Fatal("failed reads dead within two 1 s intervals")
	}
	if !q.dead(0, 3001*ms, false) {
		t.Fatal("failed reads for two intervals not dead")
	}
}
