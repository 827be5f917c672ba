// SPDX-License-Identifier: Apache-2.0
/* Maps, global data, a bpf-to-bpf call, a bounded loop and trace output:
 * the standard-helper surface the userspace runtime shares with the kernel. */
#include "kushm_bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} totals SEC(".maps");

volatile const __u64 scale = 3;

struct in {
	__u32 key;
	__u32 n;
};

static __noinline __u64 sum_to(__u32 n)
{
	__u64 s = 0;
	for (__u32 i = 1; i <= n && i <= 1000; i++)
		s += i;
	return s;
}

SEC("syscall")
int count(struct in *ctx)
{
	__u32 key = ctx->key;
	__u64 one = 1, *v;
	__u32 zero = 0;

	v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);

	v = bpf_map_lookup_elem(&totals, &zero);
	if (!v)
		return -1;
	*v += sum_to(ctx->n) * scale;
	bpf_trace_printk("key %u total %llu\n", sizeof("key %u total %llu\n"), key, *v);
	return (int)(*v & 0x7fffffff);
}

char LICENSE[] SEC("license") = "GPL";
