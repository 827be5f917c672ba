// SPDX-License-Identifier: GPL-2.0
/*
 * Per-cgroup counters without a file descriptor per cgroup per CPU: at
 * every context switch, the outgoing task's cgroup (cgroup v2 id, the
 * directory's inode number) is charged with what happened on this CPU
 * since the previous switch: on-CPU time, one context switch, the page
 * faults the task made (its own min_flt + maj_flt, read through BTF: no
 * perf event read needed), and the deltas of the per-CPU hardware perf
 * events the provider opened (read with bpf_perf_event_read_value, which
 * also gives time enabled/running, so multiplexed counters stay honest).
 * The daemon reads the per-CPU hash into the region's "cgroups" section
 * every interval.
 *
 * The idle task is charged to key 0 (no cgroup has id 0); counts of a
 * cgroup that finds the map full go to key KUSHM_CG_OVERFLOW (inserted
 * by the loader) and are counted in STAT_FULL: never lost silently.
 *
 * No hash lookup on most switches (docs/cgroups.md, "The per-CPU
 * cache"): the idle task's counts stay in this CPU's state (the daemon
 * publishes them as row 0), and so do the counts of the two cgroups
 * charged last on this CPU (the pending parts, pend/pend_id: two, so
 * that a CPU alternating between two cgroups, e.g. a service and the
 * root cgroup's kernel threads, stays off the hash). Only a switch out
 * of a third cgroup moves a pending part, the least recently charged,
 * to its cgroup's hash row (flush), under a sequence count the daemon
 * reads around its copy:
 * seq is odd while a flush runs. A flush never creates the row of a
 * cgroup the rmdir program has reported (the dead map): those counts
 * are dropped (counted in dropped).
 *
 * CPU migrations are charged by a second program (sched_migrate_task),
 * directly to the hash row of the moving task's cgroup: never to a
 * pending part, so the switch program and its flush are unchanged.
 */
#include "vmlite.h"

#define KUSHM_CG_COUNTERS 16 /* pmu preset ids 0..14, on-CPU ns at 15 */
#define KUSHM_CG_GROUPS 4
#define KUSHM_CG_EVENTS 8
#define KUSHM_CG_OVERFLOW 0xffffffffffffffffULL
#define KUSHM_CG_NOGROUP 0xff
#define PRESET_PAGE_FAULTS 12
#define PRESET_CTX_SWITCHES 13
#define PRESET_CPU_MIGRATIONS 14
#define COUNTER_RUNTIME 15

/* The value of the cgstats map, per CPU (cgbpf.Stat). */
struct cg_stat {
	__u64 counter[KUSHM_CG_COUNTERS];
	__u64 enabled[KUSHM_CG_GROUPS];
	__u64 running[KUSHM_CG_GROUPS];
};

/* The per-CPU state of the previous switch, the program's counters
 * (cgbpf.ProgStats) and the per-CPU parts of the counts (idle, pending),
 * kept here to save a map lookup per switch. */
struct cpu_last {
	__u64 ts;
	__u64 valid; /* bit k: val[k] holds a reading */
	__u64 faults_in; /* the incoming task's min_flt + maj_flt */
	__u64 task_in;   /* and its address (compared, never dereferenced) */
	__u64 switches; /* switches seen */
	__u64 full;     /* switches that went to the overflow row */
	__u64 read_err; /* bpf_perf_event_read_value failed */
	__u64 seq;      /* odd while a pend moves to the hash (flush) */
	__u64 lru;      /* the pending slot the next flush empties (0, 1) */
	__u64 pend_id[2]; /* the cgroup pend[k] holds counts of; 0: none */
	__u64 flushes;  /* pending parts moved to the hash */
	__u64 dropped;  /* switches of a removed cgroup's pending part, dropped */
	__u64 val[KUSHM_CG_EVENTS];
	__u64 enabled[KUSHM_CG_EVENTS];
	__u64 running[KUSHM_CG_EVENTS];
	struct cg_stat idle; /* the idle task's counts on this CPU (row 0) */
	struct cg_stat pend[2]; /* pend_id[k]'s counts not in its hash row yet */
};

/* Set before load: the events of slots 0..nevents-1 (maps ev0..ev7). */
volatile const __u32 nevents = 0;
volatile const __u32 ev_preset[KUSHM_CG_EVENTS] = {};
/* The group of event k whose times it carries, or KUSHM_CG_NOGROUP. */
volatile const __u32 ev_group[KUSHM_CG_EVENTS] = {};

enum {
	STAT_RMDIR, /* cgroup v2 removals seen */
	STAT_MIGRATE, /* migrations charged (sched_migrate_task of a task) */
	STAT_MIGRATE_FULL, /* of which to the overflow row (map full) */
	STAT_MIGRATE_DROPPED, /* not charged: the cgroup was removed */
	STAT_MAX,
};

/* One perf event array per event slot, indexed by CPU. */
KUSHM_EVENT_ARRAY(ev0);
KUSHM_EVENT_ARRAY(ev1);
KUSHM_EVENT_ARRAY(ev2);
KUSHM_EVENT_ARRAY(ev3);
KUSHM_EVENT_ARRAY(ev4);
KUSHM_EVENT_ARRAY(ev5);
KUSHM_EVENT_ARRAY(ev6);
KUSHM_EVENT_ARRAY(ev7);

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096); /* set by the loader */
	__type(key, __u64);
	__type(value, struct cg_stat);
} cgstats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_last);
} last SEC(".maps");

/* Ids of removed cgroups, for the daemon to free their rows. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u64);
} dead SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* CO-RE: only the fields read, relocated against the running kernel. */
struct kernfs_node {
	__u64 id;
} __attribute__((preserve_access_index));
struct cgroup_root {
	int hierarchy_id;
} __attribute__((preserve_access_index));
struct cgroup {
	struct kernfs_node *kn;
	struct cgroup_root *root;
} __attribute__((preserve_access_index));
struct css_set {
	struct cgroup *dfl_cgrp;
} __attribute__((preserve_access_index));
struct sched_entity {
	__u64 exec_start;
} __attribute__((preserve_access_index));
struct task_struct {
	int pid;
	unsigned long min_flt;
	unsigned long maj_flt;
	struct css_set *cgroups;
	struct sched_entity se;
} __attribute__((preserve_access_index));

/* The value a new cgroup's row starts from (in .rodata: no 192-byte
 * stack clear per switch). */
const struct cg_stat zero_stat = {};

const struct cg_stat *unused_cg_stat __attribute__((unused));

#define barrier() asm volatile("" ::: "memory")

/*
 * Moves pending part p (of cgroup *pid) to its cgroup's hash row and
 * starts, in p, the pending part of cgroup id. seq is odd from before
 * the row's lookup to after *pid changes: a daemon's copy of this CPU's state with the same even
 * seq before and after it saw no flush (docs/cgroups.md, guarantees 1-2).
 * The stores are kept in this order by the compiler (barrier) and by the
 * CPU on x86-64 (stores are not reordered with stores).
 */
static __always_inline void flush(struct cpu_last *l, struct cg_stat *p, __u64 *pid, __u64 id)
{
	struct cg_stat *v = 0;
	__u64 old = *pid;
	int i;

	l->seq++;
	barrier();
	if (old) {
		v = bpf_map_lookup_elem(&cgstats, &old);
		if (!v && bpf_map_lookup_elem(&dead, &old)) {
			/* Removed: never re-create its row. */
			l->dropped += p->counter[PRESET_CTX_SWITCHES];
			goto out;
		}
		if (!v) {
			bpf_map_update_elem(&cgstats, &old, &zero_stat, BPF_NOEXIST);
			v = bpf_map_lookup_elem(&cgstats, &old);
		}
		if (!v) {
			__u64 ov = KUSHM_CG_OVERFLOW;

			l->full += p->counter[PRESET_CTX_SWITCHES];
			v = bpf_map_lookup_elem(&cgstats, &ov);
		}
		if (v && !nevents) {
			/* Only what the program itself charges. */
			v->counter[PRESET_CTX_SWITCHES] += p->counter[PRESET_CTX_SWITCHES];
			v->counter[PRESET_PAGE_FAULTS] += p->counter[PRESET_PAGE_FAULTS];
			v->counter[COUNTER_RUNTIME] += p->counter[COUNTER_RUNTIME];
		} else if (v) {
#pragma unroll
			for (i = 0; i < KUSHM_CG_COUNTERS; i++)
				v->counter[i] += p->counter[i];
#pragma unroll
			for (i = 0; i < KUSHM_CG_GROUPS; i++) {
				v->enabled[i] += p->enabled[i];
				v->running[i] += p->running[i];
			}
		}
		l->flushes++;
	}
out:
	if (nevents) {
		__builtin_memset(p, 0, sizeof(*p));
	} else {
		p->counter[PRESET_CTX_SWITCHES] = 0;
		p->counter[PRESET_PAGE_FAULTS] = 0;
		p->counter[COUNTER_RUNTIME] = 0;
	}
	*pid = id;
	barrier();
	l->seq++;
}

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		*v += 1;
}

/* Charges v with event slot k's change since the previous switch. */
static __always_inline void read_event(void *map, __u32 k, struct cpu_last *l, struct cg_stat *v)
{
	struct bpf_perf_event_value pv;
	__u32 p, g;

	if (k >= nevents)
		return;
	if (bpf_perf_event_read_value(map, BPF_F_CURRENT_CPU, &pv, sizeof(pv))) {
		l->read_err++;
		l->valid &= ~(1ULL << k);
		return;
	}
	p = ev_preset[k];
	g = ev_group[k];
	/* A count or time that went back is a new event in slot k (the
	 * loader's SetEvent, for a CPU back online): no delta this once. */
	if (v && (l->valid & (1ULL << k)) && pv.counter >= l->val[k] &&
	    pv.enabled >= l->enabled[k] && pv.running >= l->running[k]) {
		if (p < KUSHM_CG_COUNTERS)
			v->counter[p & (KUSHM_CG_COUNTERS - 1)] += pv.counter - l->val[k];
		if (g < KUSHM_CG_GROUPS) {
			v->enabled[g & (KUSHM_CG_GROUPS - 1)] += pv.enabled - l->enabled[k];
			v->running[g & (KUSHM_CG_GROUPS - 1)] += pv.running - l->running[k];
		}
	}
	l->val[k] = pv.counter;
	l->enabled[k] = pv.enabled;
	l->running[k] = pv.running;
	l->valid |= 1ULL << k;
}

/*
 * sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next, ...)
 *
 * What it costs per switch matters (docs/benchmarks.md), so it calls no
 * helper on most switches (one lookup of this CPU's state, inlined by
 * recent kernels):
 *  - the idle task's counts and those of the cgroup charged last on this
 *    CPU stay in the per-CPU state; only a switch out of another cgroup
 *    looks up a hash row (flush);
 *  - the clock is the runqueue's task clock, read from the tasks: the
 *    scheduler has just set the outgoing task's se.exec_start to it
 *    (update_curr) and the incoming task's (set_next_task) before this
 *    tracepoint; the idle task's is not kept, so the other one's is used
 *    (never both idle). It leaves out interrupt and steal time where the
 *    kernel accounts them, as the tasks' own CPU times do;
 *  - the cgroup v2 id is prev->cgroups->dfl_cgrp->kn->id, what
 *    bpf_get_current_cgroup_id computes, through BTF.
 */
SEC("tp_btf/sched_switch")
int on_switch(__u64 *ctx)
{
	struct task_struct *prev = (struct task_struct *)ctx[1];
	struct task_struct *next = (struct task_struct *)ctx[2];
	struct cg_stat *v;
	struct cpu_last *l;
	__u64 id = 0, now, faults, ts;
	__u32 z = 0;

	l = bpf_map_lookup_elem(&last, &z);
	if (!l)
		return 0;
	l->switches++;
	/* pid 0 is the idle task (id 0: no cgroup has it). */
	if (prev->pid) {
		id = prev->cgroups->dfl_cgrp->kn->id;
		now = prev->se.exec_start;
	} else {
		now = next->se.exec_start;
	}
	if (!id) {
		v = &l->idle;
	} else {
		if (id == l->pend_id[0]) {
			v = &l->pend[0];
			l->lru = 1;
		} else if (id == l->pend_id[1]) {
			v = &l->pend[1];
			l->lru = 0;
		} else if (l->lru) {
			flush(l, &l->pend[1], &l->pend_id[1], id);
			v = &l->pend[1];
			l->lru = 0;
		} else {
			flush(l, &l->pend[0], &l->pend_id[0], id);
			v = &l->pend[0];
			l->lru = 1;
		}
	}
	ts = l->ts;
	v->counter[PRESET_CTX_SWITCHES] += 1;
	if (ts && now > ts)
		v->counter[COUNTER_RUNTIME] += now - ts;
	/* The task's own faults since it came in on this CPU. */
	if (ts && l->task_in == (__u64)prev) {
		faults = prev->min_flt + prev->maj_flt;
		if (faults >= l->faults_in)
			v->counter[PRESET_PAGE_FAULTS] += faults - l->faults_in;
	}
	if (now > ts)
		l->ts = now;
	l->task_in = (__u64)next;
	l->faults_in = next->min_flt + next->maj_flt;
	if (nevents) {
		read_event(&ev0, 0, l, v);
		read_event(&ev1, 1, l, v);
		read_event(&ev2, 2, l, v);
		read_event(&ev3, 3, l, v);
		read_event(&ev4, 4, l, v);
		read_event(&ev5, 5, l, v);
		read_event(&ev6, 6, l, v);
		read_event(&ev7, 7, l, v);
	}
	return 0;
}

/*
 * sched_migrate_task(struct task_struct *p, int dest_cpu): set_task_cpu()
 * is moving p to dest_cpu (its callers in 6.1 and 6.12 call it for
 * another CPU only; it fires before the kernel's own same-CPU check).
 * One migration is charged to p's cgroup (v2 id, as in on_switch).
 *
 * Where it runs: on whichever CPU moves p (the waker in try_to_wake_up,
 * the source CPU's stopper for an affinity change, the pulling CPU in
 * load balancing), with p->pi_lock or the runqueue lock held, so with
 * interrupts off. It therefore never interleaves with on_switch on the
 * same CPU (which runs under that CPU's runqueue lock, interrupts off),
 * and neither runs in NMI context. It charges this CPU's slot of the
 * hash row directly and never touches the per-CPU state (last): no
 * pending part, no seq, so the switch path and the daemon's guarantees
 * (docs/cgroups.md 1-5) are unchanged; a hash row word still only grows.
 * The add is atomic anyway (the slot is this CPU's and nothing else
 * writes it meanwhile; a migration is rare next to a switch).
 * Rows are found or made as a flush does: a removed cgroup (dead) is not
 * re-created (counted), a full map charges the overflow row (counted).
 * The per-CPU slot is the CPU that moved p, not dest_cpu: the row's sum
 * over CPUs is what readers show.
 */
SEC("tp_btf/sched_migrate_task")
int on_migrate(__u64 *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];
	struct cg_stat *v;
	__u64 id;

	if (!p->pid) /* an idle task never migrates; never charge it */
		return 0;
	id = p->cgroups->dfl_cgrp->kn->id;
	if (!id)
		return 0;
	v = bpf_map_lookup_elem(&cgstats, &id);
	if (!v) {
		if (bpf_map_lookup_elem(&dead, &id)) {
			count(STAT_MIGRATE_DROPPED);
			return 0;
		}
		bpf_map_update_elem(&cgstats, &id, &zero_stat, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&cgstats, &id);
	}
	if (!v) {
		__u64 ov = KUSHM_CG_OVERFLOW;

		count(STAT_MIGRATE_FULL);
		v = bpf_map_lookup_elem(&cgstats, &ov);
		if (!v)
			return 0;
	}
	__sync_fetch_and_add(&v->counter[PRESET_CPU_MIGRATIONS], 1);
	count(STAT_MIGRATE);
	return 0;
}

/* cgroup_rmdir(struct cgroup *cgrp, const char *path): a cgroup of the
 * default (v2) hierarchy, id 0 among hierarchies, is gone. */
SEC("tp_btf/cgroup_rmdir")
int on_rmdir(__u64 *ctx)
{
	struct cgroup *cgrp = (struct cgroup *)ctx[0];
	__u64 id, now;

	if (cgrp->root->hierarchy_id != 0)
		return 0;
	id = cgrp->kn->id;
	now = bpf_ktime_get_ns();
	count(STAT_RMDIR);
	bpf_map_update_elem(&dead, &id, &now, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
