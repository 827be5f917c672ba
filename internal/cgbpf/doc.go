// SPDX-License-Identifier: Apache-2.0

// Package cgbpf loads the per-cgroup charging program (bpf/cgroups.bpf.c):
// a tp_btf sched_switch program that charges the outgoing task's cgroup
// with the on-CPU time, one context switch and the deltas of per-CPU perf
// events since the previous switch on that CPU, keyed by cgroup v2 id,
// and a tp_btf sched_migrate_task program that charges CPU migrations. No
// file descriptor per cgroup per CPU: page faults are the task's own
// counters (read through BTF), hardware counters the provider's own
// per-CPU events, one per preset per CPU.
//
// # Where the counts are
//
// A cgroup's counts on a CPU are the sum of two parts. The hash part is
// its row in a per-CPU hash (cgstats). The pending part lives in that
// CPU's state (the per-CPU array last): each CPU keeps the counts of the
// two cgroups it charged last (pend[k], of cgroup pend_id[k]) and adds to
// them without a hash lookup while the switches it sees come out of
// those cgroups. A switch out of a third cgroup flushes the least
// recently charged slot (lru): it adds that pending part to its cgroup's
// hash row (inserting the row, or charging the overflow row when the map
// is full) and starts a pending part for the new cgroup there. The two
// slots never hold the same cgroup. The idle task's counts never leave
// the CPU's state (idle); Read reports them as the row Idle.
//
// CPU migrations have a program of their own (tp_btf/sched_migrate_task)
// that charges one migration to the moving task's cgroup, in the hash
// row only (the slot of the CPU that moves the task), never in a pending
// part: the switch program is unchanged by it. It runs with the task's
// pi_lock or a runqueue lock held (interrupts off), as the switch
// program does, so the two never interleave on one CPU; it does not
// touch the per-CPU state (no seq). It finds or makes the row as a flush
// does (a removed cgroup's row is not re-created, a full map charges the
// overflow row), so the guarantees below hold as they are: for it, a
// hash row word only grows.
//
// # Read's guarantees
//
// The program bumps the CPU's sequence count (seq) before a flush looks
// anything up and after it has changed pend_id: odd while a flush runs.
// Read copies every hash row first, then copies the per-CPU state
// several times.
//
//  1. Every hash row word and every pending word only grows between two
//     flushes of that CPU, and a flush moves a pending part into a hash
//     row (never the other way). Each word is copied whole (the kernel
//     copies map values a long at a time).
//  2. A CPU's pending parts are taken from a copy that lies between two
//     copies with the same even seq: no flush ran on that CPU from the
//     first to the last, so each pend_id[k] and pend[k] belong together.
//     The stores of a flush are kept in order by the compiler (a
//     barrier) and by the CPU on x86-64 (stores are not reordered with
//     stores, loads not with loads); a weakly ordered CPU would need
//     barriers the program does not have (only x86-64 is tested). A CPU
//     that finds no such copy in pendingReads copies is left out of that
//     read (its pending parts only; counted in ProgStats.Inconsistent).
//  3. Hash first, pending second: a count is never read twice. A flush
//     between the two reads moves counts out of the pending part after
//     the hash row was copied without them: the read is then lower than
//     the truth, never higher. Left-out pending parts (2) also only
//     lower it. Read therefore reports, per row, CPU and counter, the
//     largest value it has reported so far: monotonic, never above the
//     truth, and exact again at the next read without a racing flush.
//  4. Removed cgroups: Removed reports the ids the rmdir program
//     recorded; Read never reports them again. Their hash row is deleted
//     once a consistent read (2) of every CPU shows none holds them
//     pending, and the dead-map entry 5 s later (deadGrace: a task on
//     its way out switches out after rmdir could remove its cgroup, more
//     than once on PREEMPT_RT). Until then a flush of a removed cgroup
//     without a row drops its pending part (counted in
//     ProgStats.Dropped) instead of re-creating the row. Lost, as before
//     the cache: a removed cgroup's counts since the previous read. Not
//     covered: a task that switches out for the last time more than 5 s
//     after its cgroup's row was deleted (the row comes back, and stays
//     until the daemon restarts).
//  5. A pending part of a cgroup without a hash row is reported under
//     its id only after Read has inserted the row (zero), so its flush
//     lands there; when the map is full it is left out (it lands in the
//     overflow row at its flush, and is reported there).
//
// # Errors and lifetimes
//
// Open fails with the loader's error (no BTF, no CAP_BPF and
// CAP_PERFMON, a kernel without tp_btf) wrapped "load cgroup counter: %w";
// the provider then leaves the cgroups section empty and says why in its
// info section. A Counter is not safe for concurrent use; it owns its
// maps and links until Close.
package cgbpf
