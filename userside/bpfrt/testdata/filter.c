// SPDX-License-Identifier: Apache-2.0
/* The filter benchmark's program (../shared/bench/filter-bench.md) as BPF
 * C: ten predicates over an event of eight u64 fields, TRUE-biased. */
#include "kushm_bpf.h"

struct event {
	__u64 f[8];
};

#define P(i) if (e->f[(i) % 8] < (i) % 8) return 0;

SEC("syscall")
int filter10(struct event *e)
{
	P(0) P(1) P(2) P(3) P(4) P(5) P(6) P(7) P(8) P(9)
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
