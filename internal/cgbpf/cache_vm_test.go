// SPDX-License-Identifier: Apache-2.0

package cgbpf

import (
	"testing"

	"github.com/kushm/kushm/tools/cgwork"
	"github.com/kushm/kushm/tools/vmtest"
)

// TestVMCgroupCache runs the per-CPU cache's tests in the qemu guests
// (6.1 and 6.12: the verifier and the per-CPU lookup of each kernel):
// pending parts reported and flushed whole, a removed cgroup's pending
// part never re-creating its row, monotonic reads under churn, and the
// migrate program (sched_migrate_task) charging a process's moves, to
// the overflow row when the map is full; that the benchmarks'
// cgroup-switches trigger runs only at switches between cgroups; and
// that an event replaced under the program (SetEvent) is not charged a
// wrapped delta.
func TestVMCgroupCache(t *testing.T) {
	vmtest.Require(t)
	if _, err := cgwork.Mount2(); err != nil {
		t.Fatal(err)
	}
	t.Run("charges", TestChargesCgroup)
	t.Run("pending", TestPendingCharged)
	t.Run("removed", TestRemovedPendingNoRow)
	t.Run("monotonic", TestReadMonotonic)
	t.Run("migrations", TestMigrationsCharged)
	t.Run("migrations-full", TestMigrationsFullMap)
	t.Run("cgroup-switch-trigger", TestCgroupSwitchTrigger)
	t.Run("set-event", TestSetEventNoWrap)
}
