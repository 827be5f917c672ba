/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * The kushm helper ABI for BPF C (docs/helpers.md). Declared as kfuncs
 * (extern ... __ksym): the kernel resolves them from /sys/kernel/btf/kushm,
 * the userspace runtime (userside/bpfrt) by name. One source, compiled once
 * with clang -O2 -g -target bpf, runs on both sides.
 */
#ifndef KUSHM_KFUNCS_BPF_H
#define KUSHM_KFUNCS_BPF_H

#ifndef __ksym
#define __ksym __attribute__((section(".ksyms")))
#endif

/* Table ids (docs/region-format.md §9). */
#define KUSHM_TABLE_PROCS 0
#define KUSHM_TABLE_SYSCALLS 1
/* Syscall numbers with statistics and overrides: 0 .. KUSHM_NSYSCALLS-1. */
#define KUSHM_NSYSCALLS 512

/* Merged value of the syscalls table (struct kushm_syscall_stat). */
struct kushm_syscall_stat {
	__u64 count;
	__u64 mean_ns;
	__u64 m2;
	__u64 max_ns;
	__u64 min_ns;
	__u64 sum_ns;
	__u64 outliers;
	__u64 last_ns;
};

/* Value of the procs table (struct kushm_proc_stat): index = pmu preset id,
 * 15 = on-CPU ns. */
struct kushm_proc_stat {
	__u64 counter[16];
};

/* 0, -EINVAL (cpu or preset out of range), -ENODATA (not measured here),
 * -EAGAIN (the row kept changing). */
extern int bpf_kushm_read_counter(__u32 cpu, __u32 preset, __u64 *value) __ksym;
/* Bytes copied, -ENOENT, -EINVAL (unknown table), -E2BIG (buf__sz smaller
 * than the table's value), -EAGAIN (seq retry budget spent). */
extern int bpf_kushm_table_lookup(__u32 table, __u64 key, void *buf, __u32 buf__sz) __ksym;
/* Threshold in ns: the override if set, else mean + k*sigma after the
 * warm-up; 0 while unknown (warm-up) or for nr >= KUSHM_NSYSCALLS. */
extern __u64 bpf_kushm_syscall_threshold(__u32 nr) __ksym;
/* Adds a sample to the Welford statistics of nr; 1 if it exceeds the
 * threshold in force before it, 0 if not, <0 error (-EINVAL, -ENODATA,
 * -EAGAIN, -EBUSY, -ENOSPC). */
extern int bpf_kushm_record_latency(__u32 nr, __u64 latency_ns) __ksym;

#endif
