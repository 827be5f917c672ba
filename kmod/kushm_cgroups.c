// SPDX-License-Identifier: GPL-2.0
/*
 * Per-cgroup attribution into the "cgroups" table. The sched_switch probe
 * of kushm_procs.c computes, once, the deltas of this CPU's counters since
 * the previous switch; kushm_cgroups_charge() adds the same deltas to the
 * outgoing task's cgroup v2 row (one counter read serves both rows).
 *
 * The switch path neither allocates nor locks: it finds the cgroup's node
 * with the table's lock-free lookup and writes this CPU's slot under the
 * slot seqcount. A cgroup without a node yet is charged to the "pending"
 * row (key KUSHM_CGROUP_KEY_OVERFLOW, shown as "(other)": counted, never
 * lost) and its id is queued in a per-CPU single-producer ring; the
 * sampling work inserts the node later, in process context. The idle task
 * is charged to key KUSHM_CGROUP_KEY_IDLE. The cgroup_rmdir tracepoint
 * deletes a removed cgroup's node through the table's normal delete (its
 * node is reused after a grace period).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/cgroup.h>
#include <linux/sched.h>
#include <linux/tracepoint.h>
#include <linux/percpu.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include "kushm.h"

/* Ids a CPU may queue between two sampling works. */
#define KUSHM_CG_WANT 32
/* Removed ids kept for the work (a removal that races an insertion). */
#define KUSHM_CG_GRAVE 256

/**
 * struct kushm_cg_pcpu - one CPU's queue of cgroup ids without a node.
 * @want: the ring; written by this CPU's switch path only.
 * @head: next index the switch path writes (release).
 * @tail: next index the work reads (release).
 * @last: the id queued last, not queued again back to back.
 * @dropped: ids not queued because the ring was full (they are queued
 *	again at a later switch; their counts meanwhile go to the pending row).
 */
struct kushm_cg_pcpu {
	u64 want[KUSHM_CG_WANT];
	u32 head;
	u32 tail;
	u64 last;
	u64 dropped;
};

static u64 task_cgroup_id(struct task_struct *p)
{
	u64 id;

	rcu_read_lock();	/* the task's css_set */
	id = cgroup_id(task_dfl_cgroup(p));
	rcu_read_unlock();
	return id;
}

static void want(struct kushm_dev *d, u64 id)
{
	struct kushm_cg_pcpu *q = this_cpu_ptr(d->cg_pcpu);
	u32 head = q->head;

	if (id == q->last && head != smp_load_acquire(&q->tail))
		return;		/* already queued and not taken yet */
	if (head - smp_load_acquire(&q->tail) >= KUSHM_CG_WANT) {
		q->dropped++;
		return;
	}
	q->want[head % KUSHM_CG_WANT] = id;
	q->last = id;
	smp_store_release(&q->head, head + 1);	/* the id before the index */
}

/**
 * kushm_cgroups_charge - add one switch's deltas to the outgoing task's
 * cgroup row, in this CPU's slot.
 * @d: the device.
 * @prev: the outgoing task.
 * @delta: counters indexed like struct kushm_proc_stat (KUSHM_PROC_COUNTERS).
 *
 * Called from the sched_switch probe: runqueue locked, interrupts off. No
 * allocation, no lock.
 */
void kushm_cgroups_charge(struct kushm_dev *d, struct task_struct *prev, const u64 *delta)
{
	struct kushm_slot *slot;
	u32 idx, seq, i, cpu = smp_processor_id();
	u64 id, *v;

	if (!d->cg_pcpu || cpu >= d->ncpus)
		return;
	id = prev->pid ? task_cgroup_id(prev) : KUSHM_CGROUP_KEY_IDLE;
	if (kushm_htab_find(&d->cgroups.h, id, &idx)) {
		want(d, id);
		idx = d->cg_pending;
	}
	slot = kushm_htab_slot(&d->cgroups.h, idx, cpu);
	v = kushm_slot_value(slot);
	seq = kushm_slot_begin(slot);
	for (i = 0; i < KUSHM_PROC_COUNTERS && i < KUSHM_CGROUP_COUNTERS; i++)
		if (delta[i])
			WRITE_ONCE(v[i], v[i] + delta[i]);
	kushm_slot_end(slot, seq);
}

static void grave_add(struct kushm_dev *d, u64 id)
{
	unsigned long flags;

	spin_lock_irqsave(&d->cg_grave_lock, flags);
	if (d->cg_ngrave < KUSHM_CG_GRAVE)
		d->cg_grave[d->cg_ngrave++] = id;
	spin_unlock_irqrestore(&d->cg_grave_lock, flags);
}

/**
 * kushm_cgroups_work - insert the nodes of the cgroups the switch path
 * queued, then delete those removed meanwhile.
 * @d: the device.
 *
 * Called from the sampling work (process context). Insertion refused
 * because the table is full is counted in the table's insert_full; those
 * cgroups stay charged to the pending row.
 */
void kushm_cgroups_work(struct kushm_dev *d)
{
	struct kushm_cgroup_data data = { .valid = d->cg_valid };
	unsigned long flags;
	u32 cpu, i;
	u64 id;

	if (!d->cg_pcpu)
		return;
	for_each_possible_cpu(cpu) {
		struct kushm_cg_pcpu *q = per_cpu_ptr(d->cg_pcpu, cpu);
		u32 head = smp_load_acquire(&q->head), tail = q->tail;

		for (; tail != head; tail++) {
			u64 id = READ_ONCE(q->want[tail % KUSHM_CG_WANT]);

			if (kushm_table_get(&d->cgroups, id, &data, sizeof(data), &i) == -ENOSPC)
				d->cg_full++;
		}
		smp_store_release(&q->tail, tail);	/* the slots read before reuse */
	}
	/* A cgroup removed before its node was inserted above. */
	for (;;) {
		spin_lock_irqsave(&d->cg_grave_lock, flags);
		if (!d->cg_ngrave) {
			spin_unlock_irqrestore(&d->cg_grave_lock, flags);
			break;
		}
		id = d->cg_grave[--d->cg_ngrave];
		spin_unlock_irqrestore(&d->cg_grave_lock, flags);
		kushm_table_delete(&d->cgroups, id);
	}
}

/* cgroup_rmdir(struct cgroup *cgrp, const char *path): process context. */
static void probe_rmdir(void *data, struct cgroup *cgrp, const char *path)
{
	struct kushm_dev *d = data;
	u64 id;

	if (cgrp->root->hierarchy_id != 0)
		return;		/* a v1 hierarchy: ids of another space */
	id = cgroup_id(cgrp);
	kushm_table_delete(&d->cgroups, id);
	grave_add(d, id);	/* in case the work inserts it after this */
}

static void find_tp(struct tracepoint *tp, void *priv)
{
	struct kushm_dev *d = priv;

	if (!strcmp(tp->name, "cgroup_rmdir"))
		d->tp_rmdir = tp;
}

/**
 * kushm_cgroups_init - insert the idle and pending rows, hook cgroup_rmdir.
 * @d: the device (region laid out, before the sched_switch probe).
 * Return: 0 or a negative errno; nothing stays allocated or registered on
 * error.
 */
int kushm_cgroups_init(struct kushm_dev *d)
{
	struct kushm_cgroup_data data = {};
	u32 idx;
	int err;

	spin_lock_init(&d->cg_grave_lock);
	/*
	 * The presets the switch probe charges (those created on a CPU, as
	 * kushm_procs_init() computes its proc_mask), on-CPU time, task
	 * clock and switches.
	 */
	d->cg_valid = d->preset_ok | (1ULL << KUSHM_PROC_COUNTER_RUNTIME) |
		      (1ULL << KUSHM_SW_TASK_CLOCK) | (1ULL << KUSHM_SW_CONTEXT_SWITCHES);
	data.valid = d->cg_valid;
	/* Pinned events are never multiplexed: every counter is exact (groups 0). */
	err = kushm_table_get(&d->cgroups, KUSHM_CGROUP_KEY_OVERFLOW, &data, sizeof(data), &idx);
	if (err)
		return err;
	d->cg_pending = idx;
	err = kushm_table_get(&d->cgroups, KUSHM_CGROUP_KEY_IDLE, &data, sizeof(data), &idx);
	if (err)
		return err;
	d->cg_pcpu = alloc_percpu(struct kushm_cg_pcpu);
	if (!d->cg_pcpu)
		return -ENOMEM;
	d->cg_grave = kcalloc(KUSHM_CG_GRAVE, sizeof(*d->cg_grave), GFP_KERNEL);
	if (!d->cg_grave) {
		err = -ENOMEM;
		goto free_pcpu;
	}
	for_each_kernel_tracepoint(find_tp, d);
	if (!d->tp_rmdir) {
		pr_err("tracepoint cgroup_rmdir not found\n");
		err = -ENOENT;
		goto free_grave;
	}
	err = tracepoint_probe_register(d->tp_rmdir, probe_rmdir, d);
	if (err)
		goto free_grave;
	return 0;

free_grave:
	kfree(d->cg_grave);
	d->cg_grave = NULL;
free_pcpu:
	free_percpu(d->cg_pcpu);
	d->cg_pcpu = NULL;
	return err;
}

/**
 * kushm_cgroups_exit - unhook cgroup_rmdir and free the queues. The
 * sched_switch probe must be gone already (kushm_procs_exit()).
 * @d: the device.
 */
void kushm_cgroups_exit(struct kushm_dev *d)
{
	if (!d->cg_pcpu)
		return;
	tracepoint_probe_unregister(d->tp_rmdir, probe_rmdir, d);
	tracepoint_synchronize_unregister();
	rcu_barrier();	/* deleted nodes' grace periods */
	kfree(d->cg_grave);
	d->cg_grave = NULL;
	free_percpu(d->cg_pcpu);
	d->cg_pcpu = NULL;
}
