// SPDX-License-Identifier: Apache-2.0

package cgbpf

import (
	"strings"
	"testing"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/tools/cgwork"
)

// TestCounterIndexes cross-checks the counters the programs charge
// (cgroups.bpf.c's PRESET_* and COUNTER_RUNTIME, mirrored here) with the
// pmu preset ids and the ABI, and the stats map's size with the Go
// indexes of its entries.
func TestCounterIndexes(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"page faults", counterPageFaults, int(pmu.SW_PAGE_FAULTS)},
		{"context switches", counterSwitches, int(pmu.SW_CONTEXT_SWITCHES)},
		{"migrations", counterMigrations, int(pmu.SW_CPU_MIGRATIONS)},
		{"on-CPU ns", counterRuntime, abi.ProcCounterRuntime},
		{"counters", Counters, abi.CgroupCounters},
	} {
		if c.got != c.want {
			t.Errorf("%s: counter %d here, %d in pmu/abi", c.name, c.got, c.want)
		}
	}
	spec, err := loadCgroups()
	if err != nil {
		t.Fatal(err)
	}
	if n := spec.Maps["stats"].MaxEntries; n != statMax {
		t.Errorf("stats map: %d entries in the program, %d indexes here", n, statMax)
	}
}

// TestOpenRefusesProgramCounters: an event charged to a counter the
// programs charge themselves (here migrations) would count twice.
func TestOpenRefusesProgramCounters(t *testing.T) {
	ncpus, err := possible()
	if err != nil {
		t.Skip(err)
	}
	_, err = Open(Config{NCPUs: ncpus, Capacity: 16, Events: []Event{{Preset: uint32(pmu.SW_CPU_MIGRATIONS), Group: -1}}})
	if err == nil || !strings.Contains(err.Error(), "charges counter 14, which the program charges itself") {
		t.Fatalf("event on the migrations counter: err %v", err)
	}
}

// TestMigrationsCharged: a process that moves its thread between two
// CPUs n times (sched_setaffinity, each move checked with getcpu) is
// charged at least n migrations in its cgroup's row, and the migrate
// program's own count has them.
func TestMigrationsCharged(t *testing.T) {
	ct := newCacheTest(t)
	if len(ct.online) < 2 {
		t.Skipf("%d online CPU: nothing to migrate to", len(ct.online))
	}
	dir, id := ct.mkdir()
	st0, err := ct.c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	const n = 400
	if err := cgwork.Run(dir, cgwork.Spec{Migrations: n}); err != nil {
		t.Fatal(err)
	}
	// The moves are charged by the time sched_setaffinity returns (the
	// program runs in set_task_cpu, before the thread runs on the new
	// CPU): the first read has them. Poll anyway (a deadline, not a
	// sleep) so that a slow reader on a loaded machine is not a failure.
	var got uint64
	deadline := time.Now().Add(10 * time.Second)
	for {
		got = 0
		rows := ct.read()
		for _, s := range rows[id] {
			got += s.Counter[counterMigrations]
		}
		if got >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	st1, err := ct.c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cgroup %d: %d migrations charged for %d moves; program: %d migrations (%d to the overflow row, %d dropped)",
		id, got, n, st1.Migrations-st0.Migrations, st1.MigrationsFull-st0.MigrationsFull, st1.MigrationsDropped-st0.MigrationsDropped)
	if got < n {
		t.Errorf("cgroup charged %d migrations, want ≥ %d (its thread moved %d times)", got, n, n)
	}
	if st1.Migrations-st0.Migrations < got {
		t.Errorf("program counted %d migrations, fewer than the cgroup's %d", st1.Migrations-st0.Migrations, got)
	}
}

// TestMigrationsFullMap: with the map full, a cgroup without a row has
// its migrations charged to the overflow row and counted, never lost.
func TestMigrationsFullMap(t *testing.T) {
	ct := newCacheTest(t)
	if len(ct.online) < 2 {
		t.Skipf("%d online CPU: nothing to migrate to", len(ct.online))
	}
	// A second counter whose map holds two rows: the overflow row and a
	// row the test fills it with. (The first counter's program runs too;
	// it has a map of its own.)
	c, err := Open(Config{NCPUs: ct.ncpus, Capacity: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.objs.Cgstats.Update(uint64(1<<62), make([]Stat, ct.ncpus), 0); err != nil {
		// Another cgroup's flush may have taken the free row first: full
		// either way.
		t.Logf("filling the map: %v", err)
	}
	dir, id := ct.mkdir()
	overflow := func() (n uint64) {
		var per []Stat
		if err := c.objs.Cgstats.Lookup(Overflow, &per); err != nil {
			t.Fatal(err)
		}
		for _, s := range per {
			n += s.Counter[counterMigrations]
		}
		return n
	}
	// The program counts a full-map migration, then adds it to the
	// overflow row; other tasks' migrations go on meanwhile. Read the row
	// before the count at the start and after it at the end (polled: an
	// add in flight on another CPU lands a moment after its count), so
	// that the row's growth is at least the count's.
	o0 := overflow()
	st0, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	if err := cgwork.Run(dir, cgwork.Spec{Migrations: n}); err != nil {
		t.Fatal(err)
	}
	st1, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	full := st1.MigrationsFull - st0.MigrationsFull
	o1 := overflow()
	for deadline := time.Now().Add(5 * time.Second); o1-o0 < full && time.Now().Before(deadline); o1 = overflow() {
		time.Sleep(10 * time.Millisecond)
	}
	var own []Stat
	if err := c.objs.Cgstats.Lookup(id, &own); err == nil {
		t.Fatalf("cgroup %d has a row in a full map", id)
	}
	t.Logf("overflow row: %d migrations more; program: %d charged to it", o1-o0, full)
	if full < n || o1-o0 < full {
		t.Errorf("full map: %d migrations counted as overflow, %d added to the overflow row, want both ≥ %d", full, o1-o0, n)
	}
}
