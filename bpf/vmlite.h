/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/* The few BPF definitions the kushm programs need, without libbpf headers
 * or a generated vmlinux.h: the objects build the same everywhere. */
#ifndef KUSHM_VMLITE_H
#define KUSHM_VMLITE_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef int __s32;
typedef long long __s64;

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
#define __always_inline inline __attribute__((always_inline))

enum {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERF_EVENT_ARRAY = 4,
	BPF_MAP_TYPE_PERCPU_HASH = 5,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
};
enum { BPF_ANY = 0, BPF_NOEXIST = 1 };
#define BPF_F_CURRENT_CPU 0xffffffffULL
#define BPF_F_MMAPABLE (1U << 10)

/* An opaque timer in a map value (bpf_timer_init and friends, 5.15+). */
struct bpf_timer {
	__u64 __opaque[2];
} __attribute__((aligned(8)));
#define KUSHM_CLOCK_MONOTONIC 1
#define BPF_F_TIMER_CPU_PIN (1ULL << 1) /* bpf_timer_start: stay on this CPU (6.7+) */

/* A perf event array named name, indexed by CPU (the loader sizes it to
 * the possible CPUs, as perf event arrays must be): one per event slot
 * of a program reading per-CPU events with bpf_perf_event_read_value. */
#define KUSHM_EVENT_ARRAY(name)                              \
	struct {                                             \
		__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); \
		__type(key, __u32);                          \
		__type(value, __u32);                        \
	} name SEC(".maps")

struct bpf_perf_event_value {
	__u64 counter;
	__u64 enabled;
	__u64 running;
};

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;
static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)3;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static __u32 (*bpf_get_smp_processor_id)(void) = (void *)8;
static __u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static long (*bpf_get_current_comm)(void *buf, __u32 size_of_buf) = (void *)16;
static long (*bpf_perf_event_read_value)(void *map, __u64 flags, struct bpf_perf_event_value *buf, __u32 buf_size) = (void *)55;
static __u64 (*bpf_get_current_cgroup_id)(void) = (void *)80;
static long (*bpf_timer_init)(struct bpf_timer *timer, void *map, __u64 flags) = (void *)169;
static long (*bpf_timer_set_callback)(struct bpf_timer *timer, void *callback_fn) = (void *)170;
static long (*bpf_timer_start)(struct bpf_timer *timer, __u64 nsecs, __u64 flags) = (void *)171;
static void *(*bpf_ringbuf_reserve)(void *ringbuf, __u64 size, __u64 flags) = (void *)131;
static void (*bpf_ringbuf_submit)(void *data, __u64 flags) = (void *)132;

#endif
