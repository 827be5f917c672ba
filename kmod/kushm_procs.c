// SPDX-License-Identifier: GPL-2.0
/*
 * Per-process attribution into the "procs" table: a probe
 * on the sched_switch tracepoint (found by name with
 * for_each_kernel_tracepoint, since the tracepoint symbol is not exported)
 * charges the outgoing task's process with the on-CPU time and the deltas
 * of this CPU's counters since the previous switch, in this CPU's slot of
 * the process's node. sched_process_exit removes a process whose last
 * thread exits, sched_process_exec gives its row the exec'd name, and a
 * periodic sweep repairs whatever those probes could not see.
 *
 * Lifetime of a row (the reasoning behind "no row outlives its process"):
 *
 * R1. A row is inserted only by its own process: account() runs in
 *     __schedule() on behalf of prev, so the thread being charged is the
 *     one executing the probe, and it is not PF_EXITING (checked before
 *     every insert). A row also carries the start time of the process's
 *     leader (writer-private, pr.start[]): the pair (tgid, start) names one
 *     process for ever, whatever pid reuse does.
 *
 * R2. The process is deleted by the exit probe of the thread that drops
 *     signal->live to zero. do_exit() sets PF_EXITING (exit_signals())
 *     before atomic_dec_and_test(&signal->live) (fully ordered) and the
 *     tracepoint comes after both, so: a thread that inserts is not
 *     exiting, hence live counts it, hence the last decrement - and the
 *     probe that sees live == 0 - comes after that thread's insert, and
 *     both take procs.lock: the delete finds the row. Exits racing with an
 *     insert on another CPU therefore cannot leak: the other CPU's insert
 *     is by a live thread of the same process, ordered before the last
 *     thread's exit. Two threads exiting together may both see live == 0:
 *     the second delete finds nothing (-ENOENT), harmlessly.
 *
 * R3. Module load: the exit probe is registered first, then a grace period
 *     passes (every CPU that was inside the exit tracepoint with the old
 *     probe list has left it), and only then is sched_switch hooked. A
 *     process whose last exit tracepoint ran without our probe had all its
 *     threads PF_EXITING before the switch probe existed, so it is never
 *     inserted; every later last exit runs the probe. A process between
 *     exit and reap (a zombie) at load time never runs again except for its
 *     threads' final __schedule(), which are PF_EXITING: no row. This order
 *     closes the window in which the issue 12 reports saw 2-36 leaked rows
 *     per load (switch registered before exit).
 *
 * R4. Inserts are never deferred: account() inserts under procs.lock after
 *     a find under the same lock, so a key has at most one live node. A
 *     refused insert (full table, -EAGAIN) leaves no row, hence nothing
 *     to leak. A deleted node is reused only after a grace period, so a
 *     slot writer that found it before the unlink writes into a dead node,
 *     never into another process's row.
 *
 * R5. Repair, in case a path above is missed (a kernel that changes its
 *     exit order, a probe that failed to run): every procs_sweep_ms the
 *     sweep checks each row against the live tasks (find_pid_ns() +
 *     pid_task() + start time, and for a process whose signal->live is 0
 *     every thread's exit_state: see check_row()) and removes rows whose
 *     process is gone, counting them in the table header's "swept"; a
 *     process still on its way out is left to its exit probe, so "swept"
 *     counts only rows the probes really missed. A
 *     switch that finds its tgid in a row of another start time (a reused
 *     pid) replaces that row on the spot (counted the same way), so the new
 *     process's counters start from zero and the dead one's are never
 *     added to it.
 *
 * Names: a row's comm and uid are node data, changed only whole under the
 * node's seq (kushm_htab_set_data(), S1..S4 of docs/region-format.md §6),
 * so readers never see a torn name. sched_process_exec sets them right
 * after an exec (the common fork + exec case, where the child was first
 * switched out under its parent's name); the sweep catches renames that
 * have no tracepoint of their own (prctl(PR_SET_NAME) of the leader,
 * /proc/PID/comm, setuid()) within one period.
 *
 * Locking: procs.lock is a raw spinlock taken with interrupts off,
 * including under the runqueue lock (sched_switch), so nothing under it
 * may sleep, wake a task (call_rcu can: rcuc/nocb kthreads) or printk.
 * Nodes unlinked under the runqueue lock are therefore handed to call_rcu
 * by the sweep (pr.pend), never by the switch.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/sched.h>
#include <linux/sched/clock.h>
#include <linux/sched/signal.h>
#include <linux/cred.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/tracepoint.h>
#include <linux/percpu.h>
#include <linux/string.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include "kushm.h"

/* Fault injection for the kernel tests (debugfs procs_fault_skip_exit). */
bool kushm_procs_skip_exit;

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

/* The process's identity: its leader's start time (de_thread keeps it). */
static u64 proc_start(struct task_struct *p)
{
	struct task_struct *leader = READ_ONCE(p->group_leader);

	return leader ? READ_ONCE(leader->start_time) : READ_ONCE(p->start_time);
}

/*
 * fill_data - the node data of @p's process now: the leader's comm (which
 * an exec gives the exec'd name), tgid and uid. A comm read while another
 * CPU renames the task may mix both names; the sweep rewrites it.
 */
static void fill_data(struct kushm_proc_data *data, struct task_struct *p)
{
	struct task_struct *leader = READ_ONCE(p->group_leader);

	memcpy(data->comm, leader ? leader->comm : p->comm, sizeof(data->comm));
	data->comm[sizeof(data->comm) - 1] = '\0';
	data->pid = p->tgid;
	rcu_read_lock();	/* task_uid() dereferences the creds */
	data->uid = from_kuid_munged(&init_user_ns, task_uid(p));
	rcu_read_unlock();
}

/* Under procs.lock: count a row removed because its process was gone. */
static void count_swept(struct kushm_table *t)
{
	struct kushm_hash_header *h = kushm_htab_hdr(&t->h);

	WRITE_ONCE(h->swept, h->swept + 1);
}

/*
 * get_row - the row of @tgid for the process started at @start, inserting
 * it when absent and replacing a row of another process that had the same
 * pid (R5). Called from sched_switch with the runqueue locked: a replaced
 * node is queued on pr.pend for the sweep to hand to call_rcu.
 */
static int get_row(struct kushm_dev *d, u32 tgid, u64 start,
		   const struct kushm_proc_data *data, u32 *idx)
{
	struct kushm_table *t = &d->procs;
	unsigned long flags;
	u32 old;
	int err;

	raw_spin_lock_irqsave(&t->lock, flags);
	err = kushm_htab_find(&t->h, tgid, idx);
	if (!err && d->pr.start[*idx] != start) {
		/* A reused pid: the dead process's row goes. */
		err = kushm_htab_unlink(&t->h, tgid, &old);
		if (!err) {
			d->pr.pend[d->pr.npend++] = old;
			count_swept(t);
			err = -ENOENT;
		}
	}
	if (err == -ENOENT) {
		err = kushm_htab_insert(&t->h, tgid, data, sizeof(*data), NULL, idx);
		if (!err)
			d->pr.start[*idx] = start;
	}
	raw_spin_unlock_irqrestore(&t->lock, flags);
	return err;
}

static void account(struct kushm_dev *d, struct task_struct *p, const u64 *delta, u64 valid)
{
	struct kushm_proc_data data = {};
	struct kushm_slot *slot;
	u64 start = proc_start(p);
	u32 idx, seq, i;
	u64 *v;
	int err;

	err = kushm_htab_find(&d->procs.h, p->tgid, &idx);
	/* A lockless hint; get_row() decides under the lock. */
	if (!err && READ_ONCE(d->pr.start[idx]) != start)
		err = -ESTALE;
	if (err == -ENOENT || err == -ESTALE) {
		/* An exiting task is not (re)inserted after its exit event (R1). */
		if (p->flags & PF_EXITING)
			return;
		fill_data(&data, p);
		data.valid = valid;
		err = get_row(d, p->tgid, start, &data, &idx);
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

/*
 * Called in __schedule() with the runqueue locked and interrupts off, on
 * PREEMPT_RT too (the runqueue lock is a raw spinlock there): this CPU's
 * pcpu state and its slot of every node are ours until we return, with no
 * preemption and no interrupt in between.
 */
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

	if (READ_ONCE(kushm_procs_skip_exit))
		return;		/* fault injection: a missed exit (tests) */
	/* signal->live reached 0: this is the process's last thread (R2). */
	if (atomic_read(&p->signal->live) == 0)
		kushm_table_delete(&d->procs, p->tgid);
}

/*
 * refresh_locked - under procs.lock: give row @idx of @tgid (process
 * started at @start) the data @now (comm, uid; pid and valid kept) when
 * it differs. Return: true when the row was rewritten.
 */
static bool refresh_locked(struct kushm_dev *d, u32 idx, const struct kushm_proc_data *now)
{
	struct kushm_table *t = &d->procs;
	struct kushm_proc_data cur;

	memcpy(&cur, kushm_htab_data(&t->h, idx), sizeof(cur));
	if (!memcmp(cur.comm, now->comm, sizeof(cur.comm)) && cur.uid == now->uid)
		return false;
	memcpy(cur.comm, now->comm, sizeof(cur.comm));
	cur.uid = now->uid;
	kushm_htab_set_data(&t->h, idx, &cur, sizeof(cur));
	return true;
}

/*
 * After an exec the process is one thread, @p, the leader, with its new
 * comm and credentials in place (begin_new_exec() ran): its row, if it
 * has one, takes them at once. Process context; may run on any kernel.
 */
static void probe_exec(void *data, struct task_struct *p, pid_t old_pid,
		       struct linux_binprm *bprm)
{
	struct kushm_dev *d = data;
	struct kushm_table *t = &d->procs;
	struct kushm_proc_data now = {};
	unsigned long flags;
	u64 start = proc_start(p);
	u32 idx;

	fill_data(&now, p);
	raw_spin_lock_irqsave(&t->lock, flags);
	if (!kushm_htab_find(&t->h, p->tgid, &idx) && d->pr.start[idx] == start)
		refresh_locked(d, idx, &now);
	raw_spin_unlock_irqrestore(&t->lock, flags);
}

static void release_rcu(struct kushm_table *t, u32 idx)
{
	t->defer[idx].tab = t;
	t->defer[idx].idx = idx;
	call_rcu(&t->defer[idx].rcu, kushm_table_release_rcu);
}

enum row_state { ROW_LIVE, ROW_EXITING, ROW_GONE };

/*
 * check_row - under procs.lock and rcu_read_lock: is the process of a row
 * (@tgid, started at @start) still alive? ROW_GONE when no task has that
 * pid and start time (reaped, or the pid reused) or when every thread of
 * it has passed exit_notify(), hence its sched_process_exit tracepoint
 * (a zombie: it never runs again; its exit probe, if it ran, would have
 * removed the row). ROW_EXITING while a thread is still between
 * the last signal->live decrement and exit_notify(): its exit probe may
 * still come, so the row is left to it (and to the next sweep).
 * ROW_LIVE otherwise, with @now set to the process's current data.
 */
static enum row_state check_row(u64 tgid, u64 start, struct kushm_proc_data *now)
{
	struct task_struct *task, *t;
	struct pid *pid;

	if (tgid == 0 || tgid > PID_MAX_LIMIT)
		return ROW_GONE;
	pid = find_pid_ns((pid_t)tgid, &init_pid_ns);
	task = pid ? pid_task(pid, PIDTYPE_TGID) : NULL;
	if (!task || READ_ONCE(task->start_time) != start)
		return ROW_GONE;
	if (atomic_read(&task->signal->live) == 0) {
		for_each_thread(task, t)
			if (!READ_ONCE(t->exit_state))
				return ROW_EXITING;
		return ROW_GONE;
	}
	fill_data(now, task);
	return ROW_LIVE;
}

/*
 * sweep - hand the nodes unlinked by switches to call_rcu, then check
 * every row against the live tasks (R5): rows of processes that are gone
 * are removed and counted in the header's swept, names and uids that
 * changed without an exec are refreshed. One row per lock hold, so a
 * switch that needs the lock waits for one row's check at most.
 */
static void sweep(struct work_struct *work)
{
	struct kushm_dev *d = container_of(to_delayed_work(work), struct kushm_dev, pr.sweep);
	struct kushm_table *t = &d->procs;
	struct kushm_proc_data now;
	unsigned long flags;
	u32 i, n, idx, cap = t->h.capacity;

	raw_spin_lock_irqsave(&t->lock, flags);
	n = d->pr.npend;
	memcpy(d->pr.rel, d->pr.pend, n * sizeof(*d->pr.pend));
	d->pr.npend = 0;
	raw_spin_unlock_irqrestore(&t->lock, flags);
	for (i = 0; i < n; i++)
		release_rcu(t, d->pr.rel[i]);

	for (i = 0; i < cap && !READ_ONCE(d->pr.stopping); i++) {
		struct kushm_hnode *node = kushm_htab_node(&t->h, i);
		bool gone = false;
		u64 key;

		raw_spin_lock_irqsave(&t->lock, flags);
		/* Only the lock holder changes nodes: these reads are stable. */
		if (!(node->seq & 1)) {
			key = node->key;
			rcu_read_lock();
			switch (check_row(key, d->pr.start[i], &now)) {
			case ROW_GONE:
				gone = !kushm_htab_unlink(&t->h, key, &idx); /* idx == i */
				break;
			case ROW_LIVE:
				refresh_locked(d, i, &now);
				break;
			case ROW_EXITING:
				break;
			}
			rcu_read_unlock();
			if (gone)
				count_swept(t);
		}
		raw_spin_unlock_irqrestore(&t->lock, flags);
		if (gone)
			release_rcu(t, idx);
		if (!(i & 63))
			cond_resched();
	}
	if (!READ_ONCE(d->pr.stopping))
		queue_delayed_work(system_wq, &d->pr.sweep, d->pr.period);
}

static void find_tp(struct tracepoint *tp, void *priv)
{
	struct kushm_dev *d = priv;

	if (!strcmp(tp->name, "sched_switch"))
		d->tp_switch = tp;
	else if (!strcmp(tp->name, "sched_process_exit"))
		d->tp_exit = tp;
	else if (!strcmp(tp->name, "sched_process_exec"))
		d->tp_exec = tp;
}

static void free_pr(struct kushm_dev *d)
{
	kvfree(d->pr.rel);
	kvfree(d->pr.pend);
	kvfree(d->pr.start);
	d->pr.rel = NULL;
	d->pr.pend = NULL;
	d->pr.start = NULL;
}

/**
 * kushm_procs_init - hook sched_process_exit, sched_process_exec and
 * sched_switch (in that order: R3 above) and start the sweep.
 * @d: the device (region laid out, perf events open).
 * Return: 0, -ENOENT when a tracepoint is missing, -ENOMEM, or the
 * registration's error; nothing stays registered on error.
 */
int kushm_procs_init(struct kushm_dev *d)
{
	u32 cap = d->procs.h.capacity;
	int err;

	/*
	 * Counters charged per process: the per-CPU events that can be read
	 * locally in the switch (task clock and context switches are
	 * computed exactly from the switches themselves).
	 */
	d->proc_mask = d->preset_ok & ~((1ULL << KUSHM_SW_TASK_CLOCK) |
					(1ULL << KUSHM_SW_CONTEXT_SWITCHES));
	d->pr.start = kvcalloc(cap, sizeof(*d->pr.start), GFP_KERNEL);
	d->pr.pend = kvcalloc(cap, sizeof(*d->pr.pend), GFP_KERNEL);
	d->pr.rel = kvcalloc(cap, sizeof(*d->pr.rel), GFP_KERNEL);
	if (!d->pr.start || !d->pr.pend || !d->pr.rel) {
		err = -ENOMEM;
		goto free_pr;
	}
	d->pr.npend = 0;
	d->pr.stopping = false;
	d->pr.period = max(1UL, msecs_to_jiffies(kushm_procs_sweep_ms));
	INIT_DELAYED_WORK(&d->pr.sweep, sweep);
	d->pcpu = alloc_percpu(struct kushm_pcpu);
	if (!d->pcpu) {
		err = -ENOMEM;
		goto free_pr;
	}
	for_each_kernel_tracepoint(find_tp, d);
	if (!d->tp_switch || !d->tp_exit || !d->tp_exec) {
		pr_err("tracepoint sched_switch, sched_process_exit or sched_process_exec not found\n");
		err = -ENOENT;
		goto free_pcpu;
	}
	err = tracepoint_probe_register(d->tp_exit, probe_exit, d);
	if (err)
		goto free_pcpu;
	err = tracepoint_probe_register(d->tp_exec, probe_exec, d);
	if (err)
		goto unregister_exit;
	/* R3: every exit tracepoint that starts from here on runs probe_exit. */
	synchronize_rcu();
	err = tracepoint_probe_register(d->tp_switch, probe_switch, d);
	if (err)
		goto unregister_exec;
	queue_delayed_work(system_wq, &d->pr.sweep, d->pr.period);
	return 0;

unregister_exec:
	tracepoint_probe_unregister(d->tp_exec, probe_exec, d);
unregister_exit:
	tracepoint_probe_unregister(d->tp_exit, probe_exit, d);
	tracepoint_synchronize_unregister();
free_pcpu:
	free_percpu(d->pcpu);
	d->pcpu = NULL;
free_pr:
	free_pr(d);
	return err;
}

/**
 * kushm_procs_exit - unhook, stop the sweep, release the nodes it had not
 * handed over yet and wait for the grace periods of deleted nodes.
 * @d: the device.
 */
void kushm_procs_exit(struct kushm_dev *d)
{
	tracepoint_probe_unregister(d->tp_switch, probe_switch, d);
	tracepoint_probe_unregister(d->tp_exec, probe_exec, d);
	tracepoint_probe_unregister(d->tp_exit, probe_exit, d);
	tracepoint_synchronize_unregister();
	WRITE_ONCE(d->pr.stopping, true);
	cancel_delayed_work_sync(&d->pr.sweep);
	rcu_barrier();
	free_percpu(d->pcpu);
	d->pcpu = NULL;
	free_pr(d);
}
