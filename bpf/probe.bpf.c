// SPDX-License-Identifier: GPL-2.0
/*
 * kfunc probe: a BPF_PROG_TYPE_SYSCALL program (run with BPF_PROG_TEST_RUN)
 * that calls every bpf_kushm_* kfunc with the arguments in its context and
 * stores the results there, so tests can check each return value, bad
 * arguments included, on the kernel and the userspace runtime alike.
 */
#include "vmlite.h"
#include "kushm_kfuncs.bpf.h"

struct probe_args {
	/* in */
	__u32 cpu;
	__u32 preset;
	__u32 table;
	__u32 nr;
	__u64 key;
	__u64 latency_ns; /* recorded when record != 0 */
	__u32 record;
	__u32 pad;
	/* out */
	__s64 counter_ret;
	__u64 counter;
	__s64 lookup_ret;
	__s64 lookup_short_ret; /* same lookup with an 8-byte buffer */
	__u64 threshold;
	__s64 record_ret;
	struct kushm_syscall_stat value; /* first 64 bytes of the value */
	__u64 value_rest[8];
};

SEC("syscall")
int kfunc_probe(struct probe_args *a)
{
	__u64 v = 0, small = 0;
	__u64 buf[16] = {};

	a->counter_ret = bpf_kushm_read_counter(a->cpu, a->preset, &v);
	a->counter = v;
	a->lookup_ret = bpf_kushm_table_lookup(a->table, a->key, buf, sizeof(buf));
	a->lookup_short_ret = bpf_kushm_table_lookup(a->table, a->key, &small, sizeof(small));
	__builtin_memcpy(&a->value, buf, sizeof(a->value));
	__builtin_memcpy(a->value_rest, &buf[8], sizeof(a->value_rest));
	if (a->record)
		a->record_ret = bpf_kushm_record_latency(a->nr, a->latency_ns);
	a->threshold = bpf_kushm_syscall_threshold(a->nr);
	return 0;
}

/*
 * A batch of latencies for bpf_kushm_record_latency, recorded in order on
 * one CPU (BPF_PROG_TEST_RUN pins a run to the CPU it starts on): how the
 * tests feed whole latency streams through the kernel and compare every
 * decision with the Go model (sysstat.Sim). The latencies and decisions
 * live in entry `slot` of the batch map (a syscall program may only read
 * its context at constant offsets; one entry per concurrent caller).
 */
#define KUSHM_BATCH 256
#define KUSHM_BATCH_SLOTS 64

struct batch_buf {
	__u64 lat[KUSHM_BATCH];
	__u64 out[KUSHM_BATCH / 64];	/* bit i set: sample i was an outlier */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KUSHM_BATCH_SLOTS);
	__type(key, __u32);
	__type(value, struct batch_buf);
} batch SEC(".maps");

struct batch_args {
	__u32 nr;
	__u32 n;	/* samples in the entry's lat, at most KUSHM_BATCH */
	__u32 slot;	/* the batch map entry */
	__s32 err;	/* out: the first negative return, else 0 */
	__u32 cpu;	/* out: the CPU the batch ran on */
	__u32 pad;
};

SEC("syscall")
int record_batch(struct batch_args *a)
{
	__u32 key = a->slot, n = a->n, nr = a->nr, i;
	struct batch_buf *b;

	a->cpu = bpf_get_smp_processor_id();
	a->err = 0;
	b = bpf_map_lookup_elem(&batch, &key);
	if (!b) {
		a->err = -22; /* -EINVAL: no such entry */
		return 0;
	}
	b->out[0] = 0;
	b->out[1] = 0;
	b->out[2] = 0;
	b->out[3] = 0;
	for (i = 0; i < KUSHM_BATCH && i < n; i++) {
		int r = bpf_kushm_record_latency(nr, b->lat[i]);

		if (r < 0) {
			a->err = r;
			break;
		}
		if (r == 1)
			b->out[(i / 64) & 3] |= 1ULL << (i % 64);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
