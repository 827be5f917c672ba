/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * The C twin of package atomicarr: per-CPU counter rows
 * under a seqcount (docs/region-format.md §5). One writer per row.
 */
#ifndef _KUSHM_ATOMICARR_H
#define _KUSHM_ATOMICARR_H

#ifdef KUSHM_USERSPACE
#include "kshim.h"
#else
#include <linux/types.h>
#include <linux/compiler.h>
#include <linux/errno.h>
#include <asm/barrier.h>
#endif
#include "generated/kushm_abi.h"

/**
 * struct kushm_arr - a view of an atomicarr section. The geometry is
 * private, copied when the section was laid out.
 * @base: first row.
 * @stride: bytes per row (multiple of 64).
 * @rows: rows (one per possible CPU).
 * @slots: slots per row (<= 64).
 */
struct kushm_arr {
	u8 *base;
	u32 stride;
	u32 rows;
	u32 slots;
};

/* kushm_arr_stride - bytes per row of @slots slots, cache-line rounded. */
static inline u32 kushm_arr_stride(u32 slots)
{
	return (KUSHM_ROW_SLOTS_OFF + 8 * slots + KUSHM_CACHE_LINE - 1) /
	       KUSHM_CACHE_LINE * KUSHM_CACHE_LINE;
}

static inline struct kushm_row_header *kushm_arr_row(const struct kushm_arr *a, u32 row)
{
	return (struct kushm_row_header *)(a->base + (u64)row * a->stride);
}

static inline u64 *kushm_arr_slots(const struct kushm_arr *a, u32 row)
{
	return (u64 *)(a->base + (u64)row * a->stride + KUSHM_ROW_SLOTS_OFF);
}

/**
 * kushm_arr_update - W1..W5: publish one consistent sample of a row.
 * @a: the array.
 * @row: the row (the caller is its only writer).
 * @time_ns: CLOCK_MONOTONIC of the sample.
 * @valid: bit i set when vals[i] is a real reading.
 * @vals: @n slot values; slots past @n are left alone.
 * @n: number of values (clamped to the row's slots).
 */
static inline void kushm_arr_update(const struct kushm_arr *a, u32 row, u64 time_ns,
				    u64 valid, const u64 *vals, u32 n)
{
	struct kushm_row_header *h;
	u64 *slot;
	u64 seq;
	u32 i;

	if (row >= a->rows)
		return;
	if (n > a->slots)
		n = a->slots;
	h = kushm_arr_row(a, row);
	slot = kushm_arr_slots(a, row);
	seq = READ_ONCE(h->seq);
	WRITE_ONCE(h->seq, seq + 1);		/* W1 */
	smp_wmb();				/* W2 */
	for (i = 0; i < n; i++)			/* W3 */
		WRITE_ONCE(slot[i], vals[i]);
	WRITE_ONCE(h->time_ns, time_ns);
	WRITE_ONCE(h->valid, valid);
	smp_wmb();				/* W4 */
	WRITE_ONCE(h->seq, seq + 2);		/* W5 */
}

/**
 * kushm_arr_snapshot - R1..R5: copy one consistent row.
 * Return: 0, -EINVAL for a bad row, -EAGAIN after KUSHM_MAX_RETRIES.
 */
static inline int kushm_arr_snapshot(const struct kushm_arr *a, u32 row, u64 *time_ns,
				     u64 *valid, u64 *vals, u32 n)
{
	struct kushm_row_header *h;
	u64 *slot;
	u64 s1, s2;
	int tries;
	u32 i;

	if (row >= a->rows)
		return -EINVAL;
	if (n > a->slots)
		n = a->slots;
	h = kushm_arr_row(a, row);
	slot = kushm_arr_slots(a, row);
	for (tries = 0; tries < KUSHM_MAX_RETRIES; tries++) {
		s1 = READ_ONCE(h->seq);		/* R1 */
		if (s1 & 1)
			continue;
		smp_rmb();			/* R2 */
		*time_ns = READ_ONCE(h->time_ns);	/* R3 */
		*valid = READ_ONCE(h->valid);
		for (i = 0; i < n; i++)
			vals[i] = READ_ONCE(slot[i]);
		smp_rmb();			/* R4 */
		s2 = READ_ONCE(h->seq);		/* R5 */
		if (s1 == s2)
			return 0;
	}
	return -EAGAIN;
}

#endif /* _KUSHM_ATOMICARR_H */
