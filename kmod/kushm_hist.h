/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * kushm_hist.h - the arithmetic of a "syscalls" slot (docs/helpers.md,
 * "Integer statistics" and "Latency histograms"): the integer Welford
 * update, the latency histogram (Prometheus schema 3 buckets in whole
 * nanoseconds), the decay, the merge of slots and the thresholds of both
 * modes. Integers only. The Go twin is package internal/sysstat; the
 * internal/kmod TestCHist* tests check the two bit for bit. Included by
 * kushm_kfuncs.c and, in userspace (-DKUSHM_USERSPACE), by test/utest.c.
 */
#ifndef _KUSHM_HIST_H
#define _KUSHM_HIST_H

#ifdef KUSHM_USERSPACE
#include "kshim.h"
#else
#include <linux/types.h>
#include <linux/compiler.h>
#include <linux/limits.h>
#include <linux/math64.h>
#include <linux/string.h>
#endif
#include "generated/kushm_abi.h"
#include "generated/kushm_hist.h"
#include "kushm_rcuhash.h"

#if KUSHM_HIST_BUCKETS != KUSHM_SYSCALL_HIST_BUCKETS
#error "generated/kushm_hist.h and generated/kushm_abi.h disagree"
#endif
#if KUSHM_SYSCALL_HIST_BUCKETS % 4 || KUSHM_SYSCALL_BUCKETS_OFF % 8
#error "the merge reads the buckets four at a time, 8-byte aligned"
#endif

/**
 * struct kushm_syscall_slot - one CPU's slot of a syscall (672 bytes).
 * @stat: Welford statistics of the decayed window.
 * @total: samples ever recorded (saturating; never decays).
 * @decays: halvings of this slot.
 * @buckets: latency histogram, bucket counts (docs/helpers.md).
 */
struct kushm_syscall_slot {
	struct kushm_syscall_stat stat;
	__u64 total;
	__u64 decays;
	__u16 buckets[KUSHM_SYSCALL_HIST_BUCKETS];
};
KUSHM_STATIC_ASSERT(sizeof(struct kushm_syscall_slot) == KUSHM_SYSCALL_SLOT_SIZE, "slot size");

/**
 * struct kushm_syscall_merged - a syscall's slots merged: Welford with
 * Chan's formula, the rest summed.
 */
struct kushm_syscall_merged {
	struct kushm_syscall_stat stat;
	u64 total;
	u64 decays;
	u64 buckets[KUSHM_SYSCALL_HIST_BUCKETS];
};

/**
 * struct kushm_policy - the validated threshold rule of one syscall.
 */
struct kushm_policy {
	u32 mode;
	u32 qppm;
	u64 kx100;
	u64 factor_x1000;
	u64 warmup;
};

static inline u64 kushm_hsat_add(u64 a, u64 b)
{
	return a + b < a ? U64_MAX : a + b;
}

static inline u64 kushm_hsat_mul(u64 a, u64 b)
{
	return a && b > U64_MAX / a ? U64_MAX : a * b;
}

/* floor(sqrt(x)), bit by bit. */
static inline u64 kushm_isqrt(u64 x)
{
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

/* The bucket of a latency of ns: 0 for 0, the smallest b with
 * bounds[b] >= ns, or the overflow bucket. */
static inline u32 kushm_hist_index(u64 ns)
{
	u32 lo = 1, hi = KUSHM_HIST_OVERFLOW - 1;

	if (!ns)
		return 0;
	if (ns > kushm_hist_bounds[KUSHM_HIST_OVERFLOW - 1])
		return KUSHM_HIST_OVERFLOW;
	while (lo < hi) {
		u32 mid = (lo + hi) / 2;

		if (kushm_hist_bounds[mid] >= ns)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* The per-slot integer Welford update (owner only). */
static inline void kushm_welford(struct kushm_syscall_stat *v, u64 x, bool outlier)
{
	u64 cnt = v->count + 1, sum = kushm_hsat_add(v->sum_ns, x);
	u64 mean_old = v->count ? v->sum_ns / v->count : 0, mean_new = sum / cnt;
	s64 d1 = (s64)(x - mean_old), d2 = (s64)(x - mean_new);
	__int128 p = v->count ? (__int128)d1 * d2 : 0;

	if (p > 0)
		WRITE_ONCE(v->m2, (p >> 64) ? U64_MAX : kushm_hsat_add(v->m2, (u64)p));
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
	if (outlier)
		WRITE_ONCE(v->outliers, v->outliers + 1);
}

/* The decay step: halve the buckets and the window's count, sum and M2. */
static inline void kushm_slot_halve(struct kushm_syscall_slot *s)
{
	struct kushm_syscall_stat *st = &s->stat;
	u32 i;

	for (i = 0; i < KUSHM_SYSCALL_HIST_BUCKETS; i++)
		WRITE_ONCE(s->buckets[i], s->buckets[i] >> 1);
	WRITE_ONCE(st->count, st->count >> 1);
	if (st->count) {
		WRITE_ONCE(st->sum_ns, st->sum_ns >> 1);
		WRITE_ONCE(st->m2, st->m2 >> 1);
		WRITE_ONCE(st->mean_ns, st->sum_ns / st->count);
	} else {
		WRITE_ONCE(st->sum_ns, 0);
		WRITE_ONCE(st->m2, 0);
		WRITE_ONCE(st->mean_ns, 0);
	}
	WRITE_ONCE(s->decays, kushm_hsat_add(s->decays, 1));
}

/* h as validated: 0 or out of range is the default. */
static inline u32 kushm_valid_decay(u32 h)
{
	return h < KUSHM_MIN_DECAY_SHIFT || h > KUSHM_MAX_DECAY_SHIFT ? KUSHM_DEFAULT_DECAY_SHIFT : h;
}

/**
 * kushm_slot_record - add a sample of @x ns to a slot (its owner, inside
 * the slot's seqcount): halve first if x's bucket is at 65535, then the
 * Welford update, the bucket, total; then halve if total is a multiple of
 * 2^@h (@h validated, < 64).
 */
static inline void kushm_slot_record(struct kushm_syscall_slot *s, u64 x, bool outlier, u32 h)
{
	u32 b = kushm_hist_index(x);

	if (s->buckets[b] == 0xffff)
		kushm_slot_halve(s);
	kushm_welford(&s->stat, x, outlier);
	WRITE_ONCE(s->buckets[b], s->buckets[b] + 1);
	WRITE_ONCE(s->total, kushm_hsat_add(s->total, 1));
	if (h < 64 && !(s->total & ((1ULL << h) - 1)))
		kushm_slot_halve(s);
}

/* Merge one slot (a copy) into m; first: m is uninitialised. */
static inline void kushm_slot_merge(struct kushm_syscall_merged *m,
				    const struct kushm_syscall_slot *s, bool first)
{
	u32 i;

	if (first)
		memset(m, 0, sizeof(*m));
	kushm_merge_syscall(&m->stat, &s->stat, sizeof(s->stat), first);
	m->total = kushm_hsat_add(m->total, s->total);
	m->decays = kushm_hsat_add(m->decays, s->decays);
	/* Four buckets a word: most of a syscall's buckets are empty. */
	for (i = 0; i < KUSHM_SYSCALL_HIST_BUCKETS; i += 4) {
		u64 w;

		memcpy(&w, &s->buckets[i], sizeof(w));
		if (!w)
			continue;
		m->buckets[i] += s->buckets[i];
		m->buckets[i + 1] += s->buckets[i + 1];
		m->buckets[i + 2] += s->buckets[i + 2];
		m->buckets[i + 3] += s->buckets[i + 3];
	}
}

/* kushm_merge_fn over struct kushm_syscall_slot values into a merged. */
static inline void kushm_merge_syscall_slot(void *acc, const void *val, u32 size, bool first)
{
	if (size >= sizeof(struct kushm_syscall_slot))
		kushm_slot_merge(acc, val, first);
}

/* ceil(n * ppm / 10^6) without overflow. */
static inline u64 kushm_ceil_ppm(u64 n, u32 ppm)
{
	return n / 1000000 * ppm + (n % 1000000 * ppm + 999999) / 1000000;
}

/**
 * kushm_policy_of - the rule in force: the global settings (as loaded
 * from the control section) overridden by the syscall's policy word;
 * every out-of-range field means its default (docs/helpers.md).
 */
static inline void kushm_policy_of(struct kushm_policy *p, u32 gmode, u32 gkx100, u32 gwarmup,
				   u32 gqppm, u32 gfactor, u64 word)
{
	u32 mode = word & 0xf, param = (word >> 4) & 0xfffffff, factor = word >> 32;

	p->mode = gmode == KUSHM_TH_MODE_QUANTILE || gmode == KUSHM_TH_MODE_INTERP ?
		  gmode : KUSHM_TH_MODE_SIGMA;
	p->kx100 = gkx100 && gkx100 <= KUSHM_MAX_KX100 ? gkx100 : KUSHM_DEFAULT_KX100;
	p->warmup = gwarmup && gwarmup <= KUSHM_MAX_WARMUP ? gwarmup : KUSHM_DEFAULT_WARMUP;
	p->qppm = gqppm && gqppm <= KUSHM_MAX_QPPM ? gqppm : KUSHM_DEFAULT_QPPM;
	p->factor_x1000 = gfactor && gfactor <= KUSHM_MAX_FACTOR_X1000 ? gfactor :
			  KUSHM_DEFAULT_FACTOR_X1000;
	switch (mode) {
	case KUSHM_TH_MODE_SIGMA:
		p->mode = mode;
		if (param && param <= KUSHM_MAX_KX100)
			p->kx100 = param;
		break;
	case KUSHM_TH_MODE_QUANTILE:
	case KUSHM_TH_MODE_INTERP:
		p->mode = mode;
		if (param && param <= KUSHM_MAX_QPPM)
			p->qppm = param;
		if (factor && factor <= KUSHM_MAX_FACTOR_X1000)
			p->factor_x1000 = factor;
		break;
	}
}

/* mean + kx100·σ/100 once count >= max(warmup, 2), at least 1; else 0. */
static inline u64 kushm_sigma_threshold(const struct kushm_syscall_stat *s, u64 kx100, u64 warmup)
{
	u64 t;

	if (s->count < warmup || s->count < 2)
		return 0;
	t = kushm_hsat_add(s->sum_ns / s->count,
			   kushm_hsat_mul(kx100, kushm_isqrt(s->m2 / s->count)) / 100);
	return t ? t : 1;
}

/*
 * The quantile modes: 0 while the window holds fewer than max(warmup, 2)
 * samples; else the q-quantile's bucket (first bucket where the
 * cumulative count reaches max(ceil(N·q), 1)); its bound, or (interp) the
 * bound interpolated linearly inside it; × factor/1000, saturating, at
 * least 1; U64_MAX for the overflow bucket. Merged counts are below 2^37
 * (u16 per slot, at most 4096 slots), so no sum overflows.
 */
static inline u64 kushm_quantile_threshold(const struct kushm_syscall_merged *m, u32 qppm,
					   u64 factor_x1000, u64 warmup, bool interp)
{
	u64 n = 0, rank, cum = 0, v, t;
	u32 b;

	for (b = 0; b < KUSHM_SYSCALL_HIST_BUCKETS; b++)
		n += m->buckets[b];
	if (n < warmup || n < 2)
		return 0;
	rank = kushm_ceil_ppm(n, qppm);
	if (!rank)
		rank = 1;
	for (b = 0; b < KUSHM_HIST_OVERFLOW; b++) {
		if (cum + m->buckets[b] >= rank)
			break;
		cum += m->buckets[b];
	}
	if (b == KUSHM_HIST_OVERFLOW)
		return U64_MAX;
	v = kushm_hist_bounds[b];
	if (interp && b > 0) {
		u64 lo = kushm_hist_bounds[b - 1];

		/* rank - cum <= buckets[b]: the quotient fits */
		v = lo + mul_u64_u64_div_u64(v - lo, rank - cum, m->buckets[b]);
	}
	t = kushm_hsat_mul(v, factor_x1000) / 1000;
	return t ? t : 1;
}

/* The threshold of merged slots under rule p (no override). */
static inline u64 kushm_policy_threshold(const struct kushm_syscall_merged *m,
					 const struct kushm_policy *p)
{
	if (p->mode == KUSHM_TH_MODE_QUANTILE || p->mode == KUSHM_TH_MODE_INTERP)
		return kushm_quantile_threshold(m, p->qppm, p->factor_x1000, p->warmup,
						p->mode == KUSHM_TH_MODE_INTERP);
	return kushm_sigma_threshold(&m->stat, p->kx100, p->warmup);
}

#endif /* _KUSHM_HIST_H */
