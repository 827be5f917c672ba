// SPDX-License-Identifier: GPL-2.0
/*
 * The syscall-latency tracker: tp_btf sys_enter/sys_exit measure each
 * syscall's latency, bpf_kushm_record_latency() adds it to the region's
 * per-syscall Welford statistics and says whether it exceeds the adaptive
 * threshold (mean + k*sigma after the warm-up, or the userspace override),
 * and only the outliers reach userspace through the ring buffer.
 *
 * tp_btf (BPF_PROG_TYPE_TRACING) because 6.1 refuses kfunc calls from
 * kprobe/tracepoint/raw_tracepoint programs.
 */
#include "vmlite.h"
#include "kushm_kfuncs.bpf.h"

/* Set before load (cilium/ebpf Variables): only this tgid, 0 = all. */
volatile const __u32 filter_tgid = 0;

struct inflight {
	__u64 start_ns;
	__u32 nr;
	__u32 pad;
};

/* An outlier, as streamed by `kushm outliers` (tracker.Event). */
struct event {
	__u64 ts_ns;
	__u64 latency_ns;
	__u64 threshold_ns;
	__u32 pid; /* tgid */
	__u32 tid;
	__u32 nr;
	__u32 pad;
	char comm[16];
};

/* Counter indexes of the stats map (tracker.Stat*). */
enum {
	STAT_SAMPLES,   /* latencies recorded */
	STAT_OUTLIERS,  /* events submitted */
	STAT_DROPPED,   /* ring buffer full */
	STAT_ERRORS,    /* kfunc returned < 0 */
	STAT_UNTRACKED, /* nr out of range */
	STAT_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct inflight);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* So that bpf2go emits the Go type of an event. */
const struct event *unused_event __attribute__((unused));

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		*v += 1;
}

SEC("tp_btf/sys_enter")
int sys_enter(__u64 *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	long nr = (long)ctx[1];
	struct inflight in = {};

	if (filter_tgid && (id >> 32) != filter_tgid)
		return 0;
	if (nr < 0 || nr >= KUSHM_NSYSCALLS) {
		count(STAT_UNTRACKED);
		return 0;
	}
	in.nr = nr;
	in.start_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&inflight, &id, &in, BPF_ANY);
	return 0;
}

SEC("tp_btf/sys_exit")
int sys_exit(__u64 *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), now, lat;
	struct inflight *in;
	struct event *e;
	__u32 nr;
	int out;

	if (filter_tgid && (id >> 32) != filter_tgid)
		return 0;
	in = bpf_map_lookup_elem(&inflight, &id);
	if (!in)
		return 0;
	now = bpf_ktime_get_ns();
	lat = now - in->start_ns;
	nr = in->nr;
	bpf_map_delete_elem(&inflight, &id);
	if (nr >= KUSHM_NSYSCALLS)
		return 0;

	out = bpf_kushm_record_latency(nr, lat);
	count(STAT_SAMPLES);
	if (out < 0) {
		count(STAT_ERRORS);
		return 0;
	}
	if (out == 0)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(STAT_DROPPED);
		return 0;
	}
	e->ts_ns = now;
	e->latency_ns = lat;
	e->threshold_ns = bpf_kushm_syscall_threshold(nr);
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->nr = nr;
	e->pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	count(STAT_OUTLIERS);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
