// SPDX-License-Identifier: GPL-2.0
/*
 * kushm_kfuncs.c - BPF kfuncs that read (and, for syscall latency, update)
 * the kushm region: bpf_kushm_read_counter, bpf_kushm_table_lookup,
 * bpf_kushm_syscall_threshold, bpf_kushm_record_latency. The ABI (names,
 * arguments, return values, concurrency contract) is docs/helpers.md; the
 * userspace eBPF runtime (userside/bpfrt) implements the same names with the
 * same semantics, so one BPF C source runs on both sides.
 *
 * NOTE TO THE MODULE CORE (issue 6 <-> issue 5): call kushm_kfuncs_init()
 * from module init, kushm_kfuncs_attach(base, size) once the region is laid
 * out, and kushm_kfuncs_detach() before freeing it (see kushm_kfuncs.h).
 * This file is the only kernel writer of the "syscalls" table.
 *
 * Module BTF is required for the kfuncs to exist: without it
 * register_btf_kfunc_id_set() returns 0 and the kernel only logs "missing
 * module BTF, cannot register kfuncs". On Debian 6.1 build with
 * KDIR=$(scripts/kbtf/kbtf.sh kdir 6.1). kushm_kfuncs_registered() reports
 * whether /sys/kernel/btf/kushm exists for this module.
 *
 * Every kfunc: takes no lock it could wait for (a trylock at most), never
 * sleeps, validates every argument, bounds every loop, and only touches
 * memory inside the region using geometry validated at attach time (the
 * producer sections are read-only to userspace; the user-writable control
 * section is read with READ_ONCE and range-checked on every use).
 */
#include <linux/bpf.h>
#include <linux/btf.h>
#include <linux/btf_ids.h>
#include <linux/math64.h>
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/preempt.h>
#include <linux/rcupdate.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/version.h>

#include "generated/kushm_abi.h"
#include "generated/kushm_pmu.h"
#include "kushm_kfuncs.h"

/* 6.1 has no __bpf_kfunc and uses BTF_SET8; 6.8+ has BTF_KFUNCS_START. */
#ifndef __bpf_kfunc
#define __bpf_kfunc __used noinline
#endif
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 8, 0)
#define KUSHM_KFUNCS_START(n) BTF_SET8_START(n)
#define KUSHM_KFUNCS_END(n) BTF_SET8_END(n)
#else
#define KUSHM_KFUNCS_START(n) BTF_KFUNCS_START(n)
#define KUSHM_KFUNCS_END(n) BTF_KFUNCS_END(n)
#endif

#define KF_NSYS KUSHM_NUM_SYSCALL_OVERRIDES

/* Geometry of one rcuhash section, copied and validated at attach. */
struct kf_table {
	u8 *sec;
	struct kushm_hash_header *h;
	u32 nbuckets, capacity, node_size, nslots, value_size;
	u32 slots_off, slot_stride, buckets_off, nodes_off;
};

struct kf_state {
	u8 *base;
	size_t size;
	u32 ncpus;
	/* "pmu" atomicarr; rows == 0 when absent */
	u8 *pmu;
	u32 pmu_rows, pmu_stride, pmu_slots;
	struct kf_table tab[2]; /* KUSHM_TABLE_PROCS, KUSHM_TABLE_SYSCALLS */
	bool have_tab[2];
	struct kushm_control *ctl; /* NULL when absent */
	/* syscalls table structure writer (this file only) */
	raw_spinlock_t sys_lock;
	u32 sys_node[KF_NSYS]; /* index+1 of the node of nr, 0 = none yet */
	u32 sys_cursor;        /* next node index to try for an insert */
};

static struct kf_state __rcu *kf_cur;
static bool kf_registered;
static DEFINE_PER_CPU(int, kf_busy);

/* ---- helpers ---------------------------------------------------------- */

static u64 kf_isqrt(u64 x)
{
	/* floor(sqrt(x)), bit by bit: the reference algorithm of helpers.md */
	u64 r = 0, b = 1ULL << 62;

	while (b > x)
		b >>= 2;
	while (b) {
		if (x >= r + b) {
			x -= r + b;
			r = (r >> 1) + b;
		} else {
			r >>= 1;
		}
		b >>= 2;
	}
	return r;
}

static u64 kf_sat_add(u64 a, u64 b)
{
	u64 s = a + b;

	return s < a ? U64_MAX : s;
}

/* kf_sat_mul128 returns min(a*b, U64_MAX) for a 128-bit a and 64-bit b. */
static u64 kf_sat_mul(unsigned __int128 a, u64 b)
{
	unsigned __int128 p;

	if (!a || !b)
		return 0;
	if (a >> 64)
		return U64_MAX;
	p = a * b;
	if (p >> 64)
		return U64_MAX;
	return (u64)p;
}

/* Merged Welford accumulator (docs/helpers.md, "integer statistics"). */
struct kf_acc {
	u64 n, sum, m2, max, min, outliers, last;
};

static void kf_acc_merge(struct kf_acc *a, const struct kushm_syscall_stat *s)
{
	u64 nb = s->count, ma, mb, d, w;

	if (!nb)
		return;
	if (!a->n) {
		a->n = nb;
		a->sum = s->sum_ns;
		a->m2 = s->m2;
		a->max = s->max_ns;
		a->min = s->min_ns;
		a->outliers = s->outliers;
		a->last = s->last_ns;
		return;
	}
	ma = a->sum / a->n;
	mb = s->sum_ns / nb;
	d = ma > mb ? ma - mb : mb - ma;
	/* w = floor(na*nb/n) <= min(na, nb): 128-bit product, 64-bit quotient */
	w = mul_u64_u64_div_u64(a->n, nb, kf_sat_add(a->n, nb));
	a->m2 = kf_sat_add(kf_sat_add(a->m2, s->m2), kf_sat_mul((unsigned __int128)d * d, w));
	a->n = kf_sat_add(a->n, nb);
	a->sum = kf_sat_add(a->sum, s->sum_ns);
	if (s->max_ns > a->max)
		a->max = s->max_ns;
	if (s->min_ns < a->min)
		a->min = s->min_ns;
	a->outliers = kf_sat_add(a->outliers, s->outliers);
	a->last = s->last_ns;
}

static void kf_params(struct kf_state *st, u64 *kx100, u64 *warmup)
{
	u32 k = KUSHM_DEFAULT_KX100, w = KUSHM_DEFAULT_WARMUP;

	if (st->ctl) {
		u32 v = READ_ONCE(st->ctl->kx100);

		if (v && v <= KUSHM_MAX_KX100)
			k = v;
		v = READ_ONCE(st->ctl->warmup);
		if (v && v <= KUSHM_MAX_WARMUP)
			w = v;
	}
	*kx100 = k;
	*warmup = w;
}

/* kf_threshold_of: mean + kx100/100 * sigma once n >= max(warmup, 2). */
static u64 kf_threshold_of(const struct kf_acc *a, u64 kx100, u64 warmup)
{
	u64 mean, sd, t;

	if (a->n < warmup || a->n < 2)
		return 0;
	mean = a->sum / a->n;
	sd = kf_isqrt(a->m2 / a->n);
	t = kf_sat_add(mean, kf_sat_mul((unsigned __int128)kx100 * sd, 1) / 100);
	return t ? t : 1;
}

static inline u8 *kf_node(const struct kf_table *t, u32 i)
{
	return t->sec + t->nodes_off + (size_t)i * t->node_size;
}

static inline u8 *kf_slot(const struct kf_table *t, u8 *node, u32 j)
{
	return node + t->slots_off + (size_t)j * t->slot_stride;
}

#define KF_SEQ(p) ((u32 *)(p))
#define KF_NEXT(p) ((u32 *)((p) + 4))
#define KF_KEY(p) ((u64 *)((p) + 8))
#define KF_BUCKET(p) ((u32 *)((p) + 16))

/*
 * kf_lookup: the reader protocol L1..L8 of docs/region-format.md §6. The
 * value of key is merged over all slots into out (value_size bytes): u64
 * words summed, or for the syscalls table the statistics merged. Returns
 * value_size, -ENOENT, -EAGAIN (retry budget spent) or -EFAULT (corrupt).
 */
static int kf_lookup(const struct kf_table *t, bool stats, u64 key, void *out)
{
	u32 b = kushm_hash(key) & (t->nbuckets - 1);
	const u32 *heads = (const u32 *)(t->sec + t->buckets_off);
	int retry;

	for (retry = 0; retry < KUSHM_MAX_RETRIES; retry++) {
		u32 i = READ_ONCE(heads[b]), steps = 0;

		while (i) {
			u8 *n;
			u32 s, nb, next, j;
			u64 k;

			if (i > t->capacity || ++steps > t->capacity)
				return -EFAULT;
			n = kf_node(t, i - 1);
			s = READ_ONCE(*KF_SEQ(n));
			smp_rmb();
			if (s & 1)
				goto restart;
			k = READ_ONCE(*KF_KEY(n));
			nb = READ_ONCE(*KF_BUCKET(n));
			next = READ_ONCE(*KF_NEXT(n));
			smp_rmb();
			if (READ_ONCE(*KF_SEQ(n)) != s || nb != b)
				goto restart;
			if (k != key) {
				i = next;
				continue;
			}
			/* L8 */
			if (stats) {
				struct kf_acc a = {};
				struct kushm_syscall_stat v;
				struct kushm_syscall_stat *o = out;

				for (j = 0; j < t->nslots; j++) {
					u8 *sl = kf_slot(t, n, j);
					u32 v1 = READ_ONCE(*KF_SEQ(sl));
					const u64 *src = (const u64 *)(sl + KUSHM_SLOT_HEAD_SIZE);
					u64 *dst = (u64 *)&v;
					int w;

					if (v1 & 1)
						goto restart;
					smp_rmb();
					for (w = 0; w < sizeof(v) / 8; w++)
						dst[w] = READ_ONCE(src[w]);
					smp_rmb();
					if (READ_ONCE(*KF_SEQ(sl)) != v1)
						goto restart;
					kf_acc_merge(&a, &v);
				}
				o->count = a.n;
				o->mean_ns = a.n ? a.sum / a.n : 0;
				o->m2 = a.m2;
				o->max_ns = a.max;
				o->min_ns = a.min;
				o->sum_ns = a.sum;
				o->outliers = a.outliers;
				o->last_ns = a.last;
			} else {
				u64 *dst = out;
				u32 nw = t->value_size / 8, w;

				memset(out, 0, t->value_size);
				for (j = 0; j < t->nslots; j++) {
					u8 *sl = kf_slot(t, n, j);
					u32 v1 = READ_ONCE(*KF_SEQ(sl));
					const u64 *src = (const u64 *)(sl + KUSHM_SLOT_HEAD_SIZE);

					if (v1 & 1)
						goto restart;
					smp_rmb();
					for (w = 0; w < nw; w++)
						dst[w] += READ_ONCE(src[w]);
					smp_rmb();
					if (READ_ONCE(*KF_SEQ(sl)) != v1)
						goto restart;
				}
			}
			smp_rmb();
			if (READ_ONCE(*KF_SEQ(n)) != s)
				goto restart;
			return t->value_size;
		}
		return -ENOENT;
restart:
		;
	}
	return -EAGAIN;
}

/* ---- attach / detach --------------------------------------------------- */

static const struct kushm_section *kf_find(u8 *base, size_t size, const char *name, u32 kind)
{
	const struct kushm_header *h = (const void *)base;
	u32 i, n = min_t(u32, h->section_count, KUSHM_MAX_SECTIONS);

	for (i = 0; i < n; i++) {
		const struct kushm_section *s = (const void *)(base + KUSHM_SECTION_TABLE_OFF +
								i * KUSHM_SECTION_ENTRY_SIZE);

		if (strncmp(s->name, name, KUSHM_SECTION_NAME_LEN) || s->kind != kind)
			continue;
		if (s->flags & KUSHM_SEC_FLAG_EXTERNAL)
			return NULL;
		if (s->offset < KUSHM_HEADER_AREA_SIZE || s->offset > size || s->size > size - s->offset)
			return NULL;
		return s;
	}
	return NULL;
}

static int kf_table_init(struct kf_table *t, u8 *base, const struct kushm_section *s, u32 min_value)
{
	struct kushm_hash_header *h = (void *)(base + s->offset);
	u64 end;

	if (s->size < KUSHM_HASH_HEADER_SIZE || h->magic != KUSHM_HASH_MAGIC)
		return -EINVAL;
	t->sec = base + s->offset;
	t->h = h;
	t->nbuckets = h->nbuckets;
	t->capacity = h->capacity;
	t->node_size = h->node_size;
	t->nslots = h->nslots;
	t->value_size = h->value_size;
	t->slots_off = h->slots_off;
	t->slot_stride = h->slot_stride;
	t->buckets_off = h->buckets_off;
	t->nodes_off = h->nodes_off;
	if (!t->nbuckets || (t->nbuckets & (t->nbuckets - 1)) || !t->capacity ||
	    t->capacity > KUSHM_MAX_HASH_CAPACITY || !t->nslots || t->nslots > KUSHM_MAX_CPUS ||
	    t->value_size < min_value || t->value_size > KUSHM_MAX_VALUE_SIZE || t->value_size % 8 ||
	    t->slot_stride < KUSHM_SLOT_HEAD_SIZE + t->value_size || t->slots_off < KUSHM_RCU_NODE_SIZE)
		return -EINVAL;
	end = (u64)t->slots_off + (u64)(t->nslots - 1) * t->slot_stride + KUSHM_SLOT_HEAD_SIZE + t->value_size;
	if (end > t->node_size)
		return -EINVAL;
	if ((u64)t->buckets_off + 4ULL * t->nbuckets > t->nodes_off ||
	    (u64)t->nodes_off + (u64)t->capacity * t->node_size > s->size)
		return -EINVAL;
	return 0;
}

int kushm_kfuncs_attach(void *region, size_t size)
{
	u8 *base = region;
	const struct kushm_header *h = region;
	const struct kushm_section *s;
	struct kf_state *st;
	u32 i;

	if (!region || size < KUSHM_HEADER_AREA_SIZE || h->abi_major != KUSHM_ABI_MAJOR)
		return -EINVAL;
	st = kzalloc(sizeof(*st), GFP_KERNEL);
	if (!st)
		return -ENOMEM;
	st->base = base;
	st->size = size;
	st->ncpus = h->ncpus;
	raw_spin_lock_init(&st->sys_lock);

	s = kf_find(base, size, KUSHM_SEC_NAME_PMU, KUSHM_SEC_ATOMIC_ARR);
	if (s && s->elem_size >= KUSHM_ROW_SLOTS_OFF + 8ULL * s->aux0 && s->aux0 <= KUSHM_MAX_ROW_SLOTS &&
	    (u64)s->elem_size * s->count <= s->size) {
		st->pmu = base + s->offset;
		st->pmu_rows = s->count;
		st->pmu_stride = s->elem_size;
		st->pmu_slots = s->aux0;
	}
	s = kf_find(base, size, KUSHM_SEC_NAME_PROCS, KUSHM_SEC_RCU_HASH);
	if (s && !kf_table_init(&st->tab[KUSHM_TABLE_PROCS], base, s, 8))
		st->have_tab[KUSHM_TABLE_PROCS] = true;
	s = kf_find(base, size, KUSHM_SEC_NAME_SYSCALLS, KUSHM_SEC_RCU_HASH);
	if (s && !kf_table_init(&st->tab[KUSHM_TABLE_SYSCALLS], base, s, sizeof(struct kushm_syscall_stat)))
		st->have_tab[KUSHM_TABLE_SYSCALLS] = true;
	s = kf_find(base, size, KUSHM_SEC_NAME_CONTROL, KUSHM_SEC_CONTROL);
	if (s && s->size >= sizeof(struct kushm_control))
		st->ctl = (void *)(base + s->offset);

	/* Index the syscall nodes already live (a region adopted or prefilled). */
	if (st->have_tab[KUSHM_TABLE_SYSCALLS]) {
		struct kf_table *t = &st->tab[KUSHM_TABLE_SYSCALLS];

		for (i = 0; i < t->capacity; i++) {
			u8 *n = kf_node(t, i);
			u64 k = READ_ONCE(*KF_KEY(n));

			if (!(READ_ONCE(*KF_SEQ(n)) & 1) && k < KF_NSYS)
				st->sys_node[k] = i + 1;
		}
	}
	pr_info("kushm: kfuncs attached (pmu %s, procs %s, syscalls %s, control %s)\n",
		st->pmu ? "yes" : "no", st->have_tab[0] ? "yes" : "no",
		st->have_tab[1] ? "yes" : "no", st->ctl ? "yes" : "no");
	st = xchg((struct kf_state __force **)&kf_cur, st);
	if (st) {
		synchronize_rcu();
		kfree(st);
	}
	return 0;
}

void kushm_kfuncs_detach(void)
{
	struct kf_state *st = xchg((struct kf_state __force **)&kf_cur, NULL);

	if (st) {
		synchronize_rcu();
		kfree(st);
	}
}

/* kf_sys_node: the node of syscall nr, inserted on first use (I1..I6). */
static u8 *kf_sys_node(struct kf_state *st, u32 nr, int *err)
{
	struct kf_table *t = &st->tab[KUSHM_TABLE_SYSCALLS];
	struct kushm_hash_header *h = t->h;
	unsigned long flags;
	u32 idx = READ_ONCE(st->sys_node[nr]), b, i, j;
	u8 *n;

	if (idx)
		return kf_node(t, idx - 1);
	/* Never wait: a concurrent inserter (or NMI nesting) means try later. */
	if (!raw_spin_trylock_irqsave(&st->sys_lock, flags)) {
		*err = -EAGAIN;
		return NULL;
	}
	idx = st->sys_node[nr];
	if (idx) {
		raw_spin_unlock_irqrestore(&st->sys_lock, flags);
		return kf_node(t, idx - 1);
	}
	for (i = st->sys_cursor; i < t->capacity; i++)
		if (READ_ONCE(*KF_SEQ(kf_node(t, i))) & 1)
			break;
	if (i >= t->capacity) { /* I1: full */
		WRITE_ONCE(h->insert_full, h->insert_full + 1);
		raw_spin_unlock_irqrestore(&st->sys_lock, flags);
		*err = -ENOSPC;
		return NULL;
	}
	st->sys_cursor = i + 1;
	n = kf_node(t, i);
	b = kushm_hash(nr) & (t->nbuckets - 1);
	/* I2: the node is odd (free): nobody reads it */
	WRITE_ONCE(*KF_KEY(n), nr);
	WRITE_ONCE(*KF_BUCKET(n), b);
	for (j = 0; j < t->nslots; j++) {
		u8 *sl = kf_slot(t, n, j);
		u32 s = READ_ONCE(*KF_SEQ(sl));

		memset(sl + KUSHM_SLOT_HEAD_SIZE, 0, t->value_size);
		if (s & 1) /* a slot left odd by an earlier life: make it even */
			WRITE_ONCE(*KF_SEQ(sl), s + 1);
	}
	WRITE_ONCE(*KF_NEXT(n), READ_ONCE(((u32 *)(t->sec + t->buckets_off))[b]));
	smp_wmb(); /* I3 */
	WRITE_ONCE(*KF_SEQ(n), READ_ONCE(*KF_SEQ(n)) + 1); /* I4: even, live */
	smp_wmb(); /* I5 */
	WRITE_ONCE(((u32 *)(t->sec + t->buckets_off))[b], i + 1); /* I6 */
	WRITE_ONCE(h->count, h->count + 1);
	WRITE_ONCE(h->inserts, h->inserts + 1);
	WRITE_ONCE(st->sys_node[nr], i + 1);
	raw_spin_unlock_irqrestore(&st->sys_lock, flags);
	return n;
}

static u64 kf_sys_threshold(struct kf_state *st, u32 nr)
{
	struct kushm_syscall_stat v;
	struct kf_acc a = {};
	u64 kx100, warmup, ov = 0;

	if (st->ctl)
		ov = READ_ONCE(st->ctl->syscall_override_ns[nr]);
	if (ov)
		return ov;
	if (!st->have_tab[KUSHM_TABLE_SYSCALLS] || !READ_ONCE(st->sys_node[nr]))
		return 0;
	if (kf_lookup(&st->tab[KUSHM_TABLE_SYSCALLS], true, nr, &v) < 0)
		return 0;
	a.n = v.count;
	a.sum = v.sum_ns;
	a.m2 = v.m2;
	kf_params(st, &kx100, &warmup);
	return kf_threshold_of(&a, kx100, warmup);
}

/* ---- the kfuncs --------------------------------------------------------- */

__diag_push();
__diag_ignore_all("-Wmissing-prototypes", "kfuncs are global functions found through BTF");

__bpf_kfunc int bpf_kushm_read_counter(u32 cpu, u32 preset, u64 *value)
{
	struct kf_state *st;
	int ret = -ENODATA, retry;

	if (!value)
		return -EINVAL;
	*value = 0;
	if (preset >= KUSHM_PMU_NUM_PRESETS)
		return -EINVAL;
	rcu_read_lock();
	st = rcu_dereference(kf_cur);
	if (!st) {
		ret = -ENODATA;
		goto out;
	}
	if (cpu >= st->ncpus || cpu >= nr_cpu_ids) {
		ret = -EINVAL;
		goto out;
	}
	if (!st->pmu || cpu >= st->pmu_rows || preset >= st->pmu_slots)
		goto out;
	for (retry = 0; retry < KUSHM_MAX_RETRIES; retry++) {
		u8 *row = st->pmu + (size_t)cpu * st->pmu_stride;
		struct kushm_row_header *rh = (void *)row;
		u64 s1 = READ_ONCE(rh->seq), valid, v;

		if (s1 & 1)
			continue;
		smp_rmb(); /* R2 */
		valid = READ_ONCE(rh->valid);
		v = READ_ONCE(((u64 *)(row + KUSHM_ROW_SLOTS_OFF))[preset]);
		smp_rmb(); /* R4 */
		if (READ_ONCE(rh->seq) != s1)
			continue;
		if (!(valid & (1ULL << preset))) {
			ret = -ENODATA;
			goto out;
		}
		*value = v;
		ret = 0;
		goto out;
	}
	ret = -EAGAIN;
out:
	rcu_read_unlock();
	return ret;
}

__bpf_kfunc int bpf_kushm_table_lookup(u32 table, u64 key, void *buf, u32 buf__sz)
{
	struct kf_state *st;
	struct kf_table *t;
	int ret;

	if (table > KUSHM_TABLE_SYSCALLS || !buf)
		return -EINVAL;
	rcu_read_lock();
	st = rcu_dereference(kf_cur);
	if (!st || !st->have_tab[table]) {
		ret = -EINVAL;
		goto out;
	}
	t = &st->tab[table];
	if (buf__sz < t->value_size) {
		ret = -E2BIG;
		goto out;
	}
	ret = kf_lookup(t, table == KUSHM_TABLE_SYSCALLS, key, buf);
out:
	rcu_read_unlock();
	return ret;
}

__bpf_kfunc u64 bpf_kushm_syscall_threshold(u32 nr)
{
	struct kf_state *st;
	u64 th = 0;

	if (nr >= KF_NSYS)
		return 0;
	rcu_read_lock();
	st = rcu_dereference(kf_cur);
	if (st)
		th = kf_sys_threshold(st, nr);
	rcu_read_unlock();
	return th;
}

__bpf_kfunc int bpf_kushm_record_latency(u32 nr, u64 latency_ns)
{
	struct kf_state *st;
	struct kf_table *t;
	unsigned long flags;
	u64 th, mean_old, mean_new, x = latency_ns;
	u8 *n, *sl;
	u32 cpu, s;
	int ret = 0;
	struct kushm_syscall_stat *v;

	if (nr >= KF_NSYS)
		return -EINVAL;
	rcu_read_lock();
	st = rcu_dereference(kf_cur);
	if (!st || !st->have_tab[KUSHM_TABLE_SYSCALLS]) {
		ret = -ENODATA;
		goto out;
	}
	t = &st->tab[KUSHM_TABLE_SYSCALLS];
	/* The decision uses the threshold before this sample is added. */
	th = kf_sys_threshold(st, nr);
	n = kf_sys_node(st, nr, &ret);
	if (!n)
		goto out;

	local_irq_save(flags);
	cpu = smp_processor_id();
	if (cpu >= t->nslots) {
		ret = -ENODATA;
		goto irq_out;
	}
	/* One writer per slot: refuse nesting (NMI) on this CPU. */
	if (this_cpu_inc_return(kf_busy) != 1) {
		ret = -EBUSY;
		goto busy_out;
	}
	sl = kf_slot(t, n, cpu);
	v = (void *)(sl + KUSHM_SLOT_HEAD_SIZE);
	s = READ_ONCE(*KF_SEQ(sl));
	WRITE_ONCE(*KF_SEQ(sl), s | 1); /* U1 (s is even; stays odd if it was) */
	smp_wmb();
	{
		u64 cnt = v->count + 1, sum = kf_sat_add(v->sum_ns, x);
		s64 d1, d2;
		__int128 p;

		mean_old = v->count ? v->sum_ns / v->count : 0;
		mean_new = sum / cnt;
		d1 = (s64)(x - mean_old);
		d2 = (s64)(x - mean_new);
		p = (__int128)d1 * d2;
		if (!v->count)
			p = 0;
		if (p > 0)
			WRITE_ONCE(v->m2, (p >> 64) ? U64_MAX : kf_sat_add(v->m2, (u64)p));
		else if (p < 0)
			WRITE_ONCE(v->m2, (u64)(-p) >= v->m2 ? 0 : v->m2 - (u64)(-p));
		WRITE_ONCE(v->count, cnt);
		WRITE_ONCE(v->sum_ns, sum);
		WRITE_ONCE(v->mean_ns, mean_new);
		if (cnt == 1 || x > v->max_ns)
			WRITE_ONCE(v->max_ns, x);
		if (cnt == 1 || x < v->min_ns)
			WRITE_ONCE(v->min_ns, x);
		WRITE_ONCE(v->last_ns, x);
		if (th && x > th) {
			WRITE_ONCE(v->outliers, v->outliers + 1);
			ret = 1;
		}
	}
	smp_wmb(); /* U3 */
	WRITE_ONCE(*KF_SEQ(sl), (s | 1) + 1);
busy_out:
	this_cpu_dec(kf_busy);
irq_out:
	local_irq_restore(flags);
out:
	rcu_read_unlock();
	return ret;
}

__diag_pop();

KUSHM_KFUNCS_START(kushm_kfunc_ids)
BTF_ID_FLAGS(func, bpf_kushm_read_counter)
BTF_ID_FLAGS(func, bpf_kushm_table_lookup)
BTF_ID_FLAGS(func, bpf_kushm_syscall_threshold)
BTF_ID_FLAGS(func, bpf_kushm_record_latency)
KUSHM_KFUNCS_END(kushm_kfunc_ids)

static const struct btf_kfunc_id_set kushm_kfunc_set = {
	.owner = THIS_MODULE,
	.set = &kushm_kfunc_ids,
};

int kushm_kfuncs_init(void)
{
	int err;

	err = register_btf_kfunc_id_set(BPF_PROG_TYPE_TRACING, &kushm_kfunc_set);
	if (!err)
		err = register_btf_kfunc_id_set(BPF_PROG_TYPE_SYSCALL, &kushm_kfunc_set);
	if (err) {
		pr_warn("kushm: registering kfuncs failed: %d\n", err);
		return err;
	}
	/* Registration "succeeds" without module BTF: say so. */
#ifdef CONFIG_DEBUG_INFO_BTF_MODULES
	kf_registered = THIS_MODULE->btf_data_size > 0;
#endif
	if (!kf_registered)
		pr_warn("kushm: module has no BTF: bpf_kushm_* kfuncs are unavailable (build with scripts/kbtf)\n");
	return 0;
}

bool kushm_kfuncs_registered(void)
{
	return kf_registered;
}
