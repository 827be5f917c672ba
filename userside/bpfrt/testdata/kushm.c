// SPDX-License-Identifier: Apache-2.0
/* Calls every bpf_kushm_* kfunc and reports the results in the context, so
 * a test can check them against the live region. One source, compiled once,
 * runs in the kernel (kushm module loaded) and in userspace (bpfrt). */
#include "kushm_bpf.h"

struct report {
	/* in */
	__u32 cpu;
	__u32 preset;
	__u64 key;       /* procs table key (a pid) */
	__u32 nr;        /* syscall number */
	__u32 pad;
	__u64 latency;   /* sample to record */
	/* out */
	__s64 counter_ret;
	__u64 counter;
	__s64 lookup_ret;
	__u64 value[16]; /* struct kushm_proc_stat */
	__u64 threshold;
	__s64 outlier;
};

SEC("syscall")
int probe(struct report *r)
{
	__u64 v = 0;

	r->counter_ret = bpf_kushm_read_counter(r->cpu, r->preset, &v);
	r->counter = v;
	r->lookup_ret = bpf_kushm_table_lookup(0, r->key, r->value, sizeof(r->value));
	r->outlier = bpf_kushm_record_latency(r->nr, r->latency);
	r->threshold = bpf_kushm_syscall_threshold(r->nr);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
