// Package sysstat is the integer arithmetic of kushm's per-syscall latency
// statistics (docs/helpers.md), the Go twin of the kernel module's C
// (kmod/kushm_hist.h, kmod/kushm_rcuhash.c), bit for bit:
//
//   - the Welford update a slot's owner makes (Add), the merge of per-CPU
//     slots (MergeInto, Chan et al. with an exact cross term) and the k·σ
//     threshold (Threshold);
//   - the latency histogram of a slot (Slot: Prometheus native-histogram
//     buckets of schema 3 in whole nanoseconds, HistIndex, HistBound), its
//     decay (Slot.Halve every 2^h samples of a CPU, Slot.Record), the merge
//     (MergeSlots, rule "sum") and the quantile rules (Hist.Quantile,
//     QuantileThreshold);
//   - the rule in force for a syscall (PolicyOf: the control section's
//     global settings and per-syscall policy word, validated with defaults)
//     and its threshold (PolicyThreshold);
//   - Sim, the whole of bpf_kushm_record_latency for one syscall with the
//     kernel's per-CPU threshold cache, which the evaluation harness
//     (tools/latencyeval) measures and the guest tests compare with the
//     kernel decision by decision.
//
// Errors: none. Every function is total: saturating arithmetic, bounded
// loops, out-of-range settings replaced by their defaults, hostile slot
// bytes decoded into values that merge without overflow (FuzzSlots).
//
// Concurrency: values, no shared state. A Slot belongs to one writer (a
// CPU); readers merge copies. Sim and its Slots are not safe for
// concurrent use.
package sysstat
