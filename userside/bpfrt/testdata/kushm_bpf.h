/* SPDX-License-Identifier: Apache-2.0 */
/* Minimal BPF C definitions for kushm's test programs: no libbpf headers,
 * so the objects build the same everywhere with clang -target bpf. */
#ifndef KUSHM_BPF_H
#define KUSHM_BPF_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef int __s32;
typedef long long __s64;

#define SEC(name) __attribute__((section(name), used))
#define __ksym __attribute__((section(".ksyms")))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
#define __noinline __attribute__((noinline))

enum { BPF_MAP_TYPE_HASH = 1, BPF_MAP_TYPE_ARRAY = 2 };
enum { BPF_ANY = 0, BPF_NOEXIST = 1, BPF_EXIST = 2 };

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;
static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)3;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static long (*bpf_trace_printk)(const char *fmt, __u32 fmt_size, ...) = (void *)6;
static __u32 (*bpf_get_smp_processor_id)(void) = (void *)8;

/* The kushm kfuncs (docs/helpers.md): the kernel module and the userspace
 * runtime implement them with the same names and semantics. */
extern int bpf_kushm_read_counter(__u32 cpu, __u32 preset, __u64 *value) __ksym;
extern int bpf_kushm_table_lookup(__u32 table, __u64 key, void *buf, __u32 buf__sz) __ksym;
extern __u64 bpf_kushm_syscall_threshold(__u32 nr) __ksym;
extern int bpf_kushm_record_latency(__u32 nr, __u64 latency_ns) __ksym;

#endif
