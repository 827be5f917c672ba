/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * The C twin of package rcuhash: the region's seq-validated
 * hash table (docs/region-format.md §6), shared memory that readers in any
 * process (and kernel eBPF, through kfuncs) read without a lock.
 *
 * Writers: one structure writer at a time (the caller serialises insert,
 * unlink, release and set_data); slot j of a live node is written only by its owner
 * (CPU j in the kernel, with interrupts off). Readers never write.
 *
 * The same source builds in userspace (-DKUSHM_USERSPACE, test/kshim.h) so
 * the host can check it against the Go implementation's vectors.
 */
#ifndef _KUSHM_RCUHASH_H
#define _KUSHM_RCUHASH_H

#ifdef KUSHM_USERSPACE
#include "kshim.h"
#else
#include <linux/types.h>
#include <linux/compiler.h>
#include <linux/errno.h>
#include <asm/barrier.h>
#endif
#include "generated/kushm_abi.h"

/*
 * Bucket b's chain head is the head field of node b (its home node), at
 * offset 20 of the node (docs/region-format.md §6).
 */
#define KUSHM_HNODE_HEAD_OFF 20

/* Largest slot value the lock-free reader copies (it copies on the stack). */
#define KUSHM_HTAB_MAX_READ_VALUE 256

/**
 * struct kushm_hgeom - what a table is asked to hold.
 * @capacity: nodes; at most KUSHM_MAX_HASH_CAPACITY.
 * @nbuckets: power of two, 0 for the next power of two >= @capacity.
 * @nslots: value slots per node (1, or one per CPU).
 * @value_size: bytes per slot value, a positive multiple of 8.
 * @data_size: bytes of immutable node data, a multiple of 8.
 */
struct kushm_hgeom {
	u32 capacity;
	u32 nbuckets;
	u32 nslots;
	u32 value_size;
	u32 data_size;
};

/*
 * struct kushm_htab - a writer's or reader's view of one table. The
 * geometry is private (copied when the table was formatted or validated)
 * so nothing in shared memory is trusted as an offset or a bound.
 */
struct kushm_htab {
	u8 *base;
	u64 size;
	u32 nbuckets, capacity, node_size, nslots, value_size;
	u32 slots_off, slot_stride, data_off, data_size;
	u32 buckets_off, nodes_off;
	/* The structure writer's private free set: a stack with positions. */
	u32 *free;	/* [capacity] free node indexes */
	s32 *pos;	/* [capacity] index in free, -1 when not free */
	u32 nfree;
};

typedef void (*kushm_merge_fn)(void *acc, const void *val, u32 size, bool first);

u64 kushm_htab_size(const struct kushm_hgeom *g);
int kushm_htab_format(struct kushm_htab *t, void *sec, u64 size, const struct kushm_hgeom *g,
		      u32 *free, s32 *pos);
int kushm_htab_attach(struct kushm_htab *t, void *sec, u64 size);
int kushm_htab_insert(struct kushm_htab *t, u64 key, const void *data, u32 data_len,
		      const void *val, u32 *idx);
int kushm_htab_unlink(struct kushm_htab *t, u64 key, u32 *idx);
void kushm_htab_release(struct kushm_htab *t, u32 idx);
void kushm_htab_set_data(struct kushm_htab *t, u32 idx, const void *data, u32 data_len);
int kushm_htab_find(const struct kushm_htab *t, u64 key, u32 *idx);
int kushm_htab_lookup(const struct kushm_htab *t, u64 key, void *out, u32 out_len,
		      kushm_merge_fn merge);
int kushm_htab_lookup_tmp(const struct kushm_htab *t, u64 key, void *out, u32 out_len,
			  kushm_merge_fn merge, u64 *tmp, u32 tmp_len, u32 len);
void kushm_merge_sum(void *acc, const void *val, u32 size, bool first);
void kushm_merge_syscall(void *acc, const void *val, u32 size, bool first);

static inline struct kushm_hash_header *kushm_htab_hdr(const struct kushm_htab *t)
{
	return (struct kushm_hash_header *)t->base;
}

static inline struct kushm_hnode *kushm_htab_node(const struct kushm_htab *t, u32 idx)
{
	return (struct kushm_hnode *)(t->base + t->nodes_off + (u64)idx * t->node_size);
}

static inline void *kushm_htab_data(const struct kushm_htab *t, u32 idx)
{
	return (u8 *)kushm_htab_node(t, idx) + t->data_off;
}

static inline struct kushm_slot *kushm_htab_slot(const struct kushm_htab *t, u32 idx, u32 j)
{
	return (struct kushm_slot *)((u8 *)kushm_htab_node(t, idx) + t->slots_off +
				     (u64)j * t->slot_stride);
}

/* The value words of a slot follow its 8-byte head. */
static inline u64 *kushm_slot_value(struct kushm_slot *s)
{
	return (u64 *)(s + 1);
}

/* U1: open slot s for update (its owner only). */
static inline u32 kushm_slot_begin(struct kushm_slot *s)
{
	u32 seq = READ_ONCE(s->seq);

	WRITE_ONCE(s->seq, seq + 1);
	smp_wmb();	/* U1: odd seq before the value stores */
	return seq;
}

/* U3: close the update opened by kushm_slot_begin(). */
static inline void kushm_slot_end(struct kushm_slot *s, u32 seq)
{
	smp_wmb();	/* U3: value stores before the even seq */
	WRITE_ONCE(s->seq, seq + 2);
}

#endif /* _KUSHM_RCUHASH_H */
