// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel's side of the region's rcuhash tables: the
 * structure writer's lock, deferred reuse of deleted nodes (D4 after a
 * grace period), and lock-free lookups for kernel readers. The "syscalls"
 * table is formatted here and written by kushm_kfuncs.c only.
 */
#include <linux/kernel.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/hardirq.h>
#include <linux/math.h>
#include <linux/math64.h>
#include <linux/log2.h>
#include "kushm.h"

/**
 * kushm_table_init - allocate the writer-side state of a table of
 * @capacity entries (rounded up to a power of two), before its format.
 * @t: the table.
 * @capacity: entries.
 * Return: 0 or -ENOMEM; nothing is left allocated on error.
 */
int kushm_table_init(struct kushm_table *t, u32 capacity)
{
	raw_spin_lock_init(&t->lock);
	t->cap = roundup_pow_of_two(capacity);
	t->defer = kvcalloc(t->cap, sizeof(*t->defer), GFP_KERNEL);
	if (!t->defer)
		return -ENOMEM;
	t->free = kvcalloc(t->cap, sizeof(*t->free), GFP_KERNEL);
	if (!t->free)
		goto free_defer;
	t->pos = kvcalloc(t->cap, sizeof(*t->pos), GFP_KERNEL);
	if (!t->pos)
		goto free_free;
	return 0;

free_free:
	kvfree(t->free);
	t->free = NULL;
free_defer:
	kvfree(t->defer);
	t->defer = NULL;
	return -ENOMEM;
}

/**
 * kushm_table_exit - free the writer-side state. The caller has waited for
 * pending grace-period callbacks (rcu_barrier()).
 * @t: the table.
 */
void kushm_table_exit(struct kushm_table *t)
{
	kvfree(t->pos);
	kvfree(t->free);
	kvfree(t->defer);
	t->defer = NULL;
	t->free = NULL;
	t->pos = NULL;
}

static void lock_table(struct kushm_table *t, unsigned long *flags)
{
	raw_spin_lock_irqsave(&t->lock, *flags);
}

/**
 * kushm_table_get - the node of @key, inserting it with @data when absent.
 * Callers are in an RCU read-side section (or have interrupts off) and
 * never in NMI context.
 * @t: the table.
 * @key: the key.
 * @data: node data for an insert.
 * @len: bytes of @data.
 * @idx: the node.
 * Return: 0, -ENOSPC (full), -EAGAIN or -EUCLEAN.
 */
int kushm_table_get(struct kushm_table *t, u64 key, const void *data, u32 len, u32 *idx)
{
	unsigned long flags;
	int err;

	err = kushm_htab_find(&t->h, key, idx);
	if (err != -ENOENT)
		return err;
	lock_table(t, &flags);
	err = kushm_htab_find(&t->h, key, idx);
	if (err == -ENOENT)
		err = kushm_htab_insert(&t->h, key, data, len, NULL, idx);
	raw_spin_unlock_irqrestore(&t->lock, flags);
	return err;
}

/**
 * kushm_table_release_rcu - D4 of a node whose grace period ended: back to
 * the free set (call_rcu callback of struct kushm_defer).
 * @rcu: the node's kushm_defer.rcu.
 */
void kushm_table_release_rcu(struct rcu_head *rcu)
{
	struct kushm_defer *df = container_of(rcu, struct kushm_defer, rcu);
	struct kushm_table *t = df->tab;
	unsigned long flags;

	lock_table(t, &flags);
	kushm_htab_release(&t->h, df->idx);
	raw_spin_unlock_irqrestore(&t->lock, flags);
}

/**
 * kushm_table_delete - unlink @key now and reuse its node after a grace
 * period, so no kernel slot writer can write into a recycled node.
 * @t: the table.
 * @key: the key.
 * Return: 0 or -ENOENT.
 */
int kushm_table_delete(struct kushm_table *t, u64 key)
{
	unsigned long flags;
	u32 idx;
	int err;

	lock_table(t, &flags);
	err = kushm_htab_unlink(&t->h, key, &idx);
	raw_spin_unlock_irqrestore(&t->lock, flags);
	if (err)
		return err;
	t->defer[idx].tab = t;
	t->defer[idx].idx = idx;
	call_rcu(&t->defer[idx].rcu, kushm_table_release_rcu);
	return 0;
}

/**
 * kushm_table_lookup - lock-free read of @key in table @table (0 procs,
 * 1 syscalls), slots merged (summed, or Chan-merged for syscalls).
 * @table: KUSHM_TABLE_PROCS or KUSHM_TABLE_SYSCALLS.
 * @key: the key.
 * @out: the value.
 * @out_len: bytes of @out.
 * Return: 0, -EINVAL, -ENODEV, -ENOENT, -EAGAIN, -E2BIG or -EUCLEAN.
 */
int kushm_table_lookup(u32 table, u64 key, void *out, u32 out_len)
{
	struct kushm_dev *d = READ_ONCE(kushm);

	if (!d)
		return -ENODEV;
	switch (table) {
	case KUSHM_TABLE_PROCS:
		return kushm_htab_lookup(&d->procs.h, key, out, out_len, kushm_merge_sum);
	case KUSHM_TABLE_SYSCALLS:
		return kushm_htab_lookup(&d->syscalls.h, key, out, out_len, kushm_merge_syscall);
	}
	return -EINVAL;
}
