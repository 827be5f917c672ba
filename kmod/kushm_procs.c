// SPDX-License-Identifier: GPL-2.0
/*
 * Per-process attribution into the "procs" table: a probe
 * on the sched_switch tracepoint (found by name with
 * for_each_kernel_tracepoint, since the tracepoint symbol is not exported)
 * charges the outgoing task's process with the on-CPU time and the deltas
 * of this CPU's counters since the previous switch, in this CPU's slot of
 * the process's node. sched_process_exit removes a process whose last
 * thread exits.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/sched.h>
#include <linux/sched/clock.h>
#include <linux/sched/signal.h>
#include <linux/cred.h>
#include <linux/tracepoint.h>
#include <linux/percpu.h>
#include <linux/string.h>
#include "kushm.h"

/*
 * read_local - read a CPU-bound perf event on its own CPU with interrupts
 * off, the way LTTng-modules does (perf_event_read_local is not exported).
 */
static bool read_local(struct perf_event *e, u64 *v)
{
	if (!e || READ_ONCE(e->state) != PERF_EVENT_STATE_ACTIVE ||
	    READ_ONCE(e->oncpu) != smp_processor_id())
		return false;
	if (e->attr.type != PERF_TYPE_SOFTWARE)
		e->pmu->read(e);
	*v = local64_read(&e->count);
	return true;
}

static void account(struct kushm_dev *d, struct task_struct *p, const u64 *delta, u64 valid)
{
	struct kushm_proc_data data = {};
	struct kushm_slot *slot;
	struct task_struct *leader;
	u32 idx, seq, i;
	u64 *v;
	int err;

	err = kushm_htab_find(&d->procs.h, p->tgid, &idx);
	if (err == -ENOENT) {
		/* An exiting task is not (re)inserted after its exit event. */
		if (p->flags & PF_EXITING)
			return;
		leader = READ_ONCE(p->group_leader);
		memcpy(data.comm, leader ? leader->comm : p->comm, sizeof(data.comm));
		data.comm[sizeof(data.comm) - 1] = '\0';
		data.pid = p->tgid;
		rcu_read_lock();	/* task_uid() dereferences the creds */
		data.uid = from_kuid_munged(&init_user_ns, task_uid(p));
		rcu_read_unlock();
		data.valid = valid;
		err = kushm_table_get(&d->procs, p->tgid, &data, sizeof(data), &idx);
	}
	if (err)
		return;
	slot = kushm_htab_slot(&d->procs.h, idx, smp_processor_id());
	v = kushm_slot_value(slot);
	seq = kushm_slot_begin(slot);
	for (i = 0; i < KUSHM_PROC_COUNTERS; i++)
		if (delta[i])
			WRITE_ONCE(v[i], v[i] + delta[i]);
	kushm_slot_end(slot, seq);
}

/* Called with the runqueue locked and interrupts off. */
static void probe_switch(void *data, bool preempt, struct task_struct *prev,
			 struct task_struct *next, unsigned int prev_state)
{
	struct kushm_dev *d = data;
	struct kushm_pcpu *pc = this_cpu_ptr(d->pcpu);
	u32 cpu = smp_processor_id();
	u64 delta[KUSHM_PROC_COUNTERS] = {};
	u64 now = local_clock(), valid;
	u32 p;

	if (cpu >= d->ncpus)
		return;
	valid = (1ULL << KUSHM_PROC_COUNTER_RUNTIME) | (1ULL << KUSHM_SW_TASK_CLOCK) |
		(1ULL << KUSHM_SW_CONTEXT_SWITCHES);
	for (p = 0; p < KUSHM_PMU_NUM_PRESETS; p++) {
		u64 cur;

		if (!(d->proc_mask & (1ULL << p)))
			continue;
		if (!read_local(kushm_event(d, cpu, p), &cur))
			continue;
		/* A counter reopened by CPU hotplug restarts: no delta. */
		delta[p] = pc->primed && cur >= pc->last[p] ? cur - pc->last[p] : 0;
		pc->last[p] = cur;
		valid |= 1ULL << p;
	}
	if (!pc->primed) {
		pc->primed = true;
		pc->last_ns = now;
		return;
	}
	delta[KUSHM_PROC_COUNTER_RUNTIME] = now - pc->last_ns;
	delta[KUSHM_SW_TASK_CLOCK] = delta[KUSHM_PROC_COUNTER_RUNTIME];
	delta[KUSHM_SW_CONTEXT_SWITCHES] = 1;
	pc->last_ns = now;
	kushm_cgroups_charge(d, prev, delta);	/* the same reads, per cgroup */
	if (!prev->pid)
		return;			/* the idle task */
	account(d, prev, delta, valid);
}

static void probe_exit(void *data, struct task_struct *p)
{
	struct kushm_dev *d = data;

	/* signal->live reached 0: this is the process's last thread. */
	if (atomic_read(&p->signal->live) == 0)
		kushm_table_delete(&d->procs, p->tgid);
}


static void find_tp(struct tracepoint *tp, void *priv)
{
	struct kushm_dev *d = priv;

	if (!strcmp(tp->name, "sched_switch"))
		d->tp_switch = tp;
	else if (!strcmp(tp->name, "sched_process_exit"))
		d->tp_exit = tp;
}

/**
 * kushm_procs_init - hook sched_switch and sched_process_exit.
 * @d: the device (region laid out, perf events open).
 * Return: 0, -ENOENT when a tracepoint is missing, or the registration's
 * error; nothing stays registered on error.
 */
int kushm_procs_init(struct kushm_dev *d)
{
	int err;

	/*
	 * Counters charged per process: the per-CPU events that can be read
	 * locally in the switch (task clock and context switches are
	 * computed exactly from the switches themselves).
	 */
	d->proc_mask = d->preset_ok & ~((1ULL << KUSHM_SW_TASK_CLOCK) |
					(1ULL << KUSHM_SW_CONTEXT_SWITCHES));
	d->pcpu = alloc_percpu(struct kushm_pcpu);
	if (!d->pcpu)
		return -ENOMEM;
	for_each_kernel_tracepoint(find_tp, d);
	if (!d->tp_switch || !d->tp_exit) {
		pr_err("tracepoint sched_switch or sched_process_exit not found\n");
		err = -ENOENT;
		goto free_pcpu;
	}
	err = tracepoint_probe_register(d->tp_switch, probe_switch, d);
	if (err)
		goto free_pcpu;
	err = tracepoint_probe_register(d->tp_exit, probe_exit, d);
	if (err)
		goto unregister_switch;
	return 0;

unregister_switch:
	tracepoint_probe_unregister(d->tp_switch, probe_switch, d);
	tracepoint_synchronize_unregister();
free_pcpu:
	free_percpu(d->pcpu);
	d->pcpu = NULL;
	return err;
}

/**
 * kushm_procs_exit - unhook, wait for running probes and for the grace
 * periods of deleted nodes.
 * @d: the device.
 */
void kushm_procs_exit(struct kushm_dev *d)
{
	tracepoint_probe_unregister(d->tp_exit, probe_exit, d);
	tracepoint_probe_unregister(d->tp_switch, probe_switch, d);
	tracepoint_synchronize_unregister();
	rcu_barrier();
	free_percpu(d->pcpu);
	d->pcpu = NULL;
}
