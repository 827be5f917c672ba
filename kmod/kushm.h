/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Internal declarations of the kushm module. The region's layout
 * is in include/generated/kushm_abi.h (generated from internal/abi).
 */
#ifndef _KUSHM_H
#define _KUSHM_H

#include <linux/types.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>
#include <linux/miscdevice.h>
#include <linux/perf_event.h>
#include <linux/rcupdate.h>
#include "generated/kushm_abi.h"
#include "generated/kushm_pmu.h"
#include "generated/kushm_msr.h"
#include "kushm_atomicarr.h"
#include "kushm_rcuhash.h"

#define KUSHM_VERSION "0.1.0"
#define KUSHM_PRODUCER_NAME "kushm.ko " KUSHM_VERSION
#define KUSHM_NSECTIONS 10
#define KUSHM_INFO_SIZE 8192
/* Samples after which a counter that read 0 and never moved is reported. */
#define KUSHM_SETTLE_SAMPLES 5

/* The validated view of the user-writable control section. */
struct kushm_cfg {
	u32 interval_us;
	u32 kx100;
	u32 warmup;
};

/* Per-CPU state of the per-process attribution (sched_switch). */
struct kushm_pcpu {
	u64 last_ns;
	u64 last[KUSHM_PMU_NUM_PRESETS];
	bool primed;
};

/* A deleted node waiting for its grace period (one per node). */
struct kushm_defer {
	struct rcu_head rcu;
	struct kushm_table *tab;
	u32 idx;
};

/*
 * struct kushm_procs - the procs table's writer-private state
 * (kushm_procs.c), in kernel memory readers never see.
 */
struct kushm_procs {
	u64 *start;			/* [cap] start_time of the row's process */
	u32 *pend;			/* [cap] unlinked under the runqueue lock */
	u32 npend;			/* entries of pend, under procs.lock */
	u32 *rel;			/* [cap] the sweep's copy of pend */
	struct delayed_work sweep;
	unsigned long period;		/* jiffies between sweeps */
	bool stopping;
};

/* An rcuhash table of the region with its writer-side state. */
struct kushm_table {
	struct kushm_htab h;
	raw_spinlock_t lock;		/* serialises the structure writer */
	u32 cap;			/* capacity, a power of two */
	struct kushm_defer *defer;	/* [cap] */
	u32 *free;			/* [cap] the writer's free set */
	s32 *pos;			/* [cap] */
};

/**
 * struct kushm_dev - the module's one instance.
 *
 * Everything the region holds is written by the kernel only, except the
 * control section, which any mapper with write access may scribble on; the
 * module reads it through kushm_read_control() alone.
 */
struct kushm_dev {
	void *region;
	u64 size;
	u32 ncpus;
	struct kushm_header *hdr;
	struct kushm_section *sec;	/* the section table */
	struct kushm_arr pmu;
	struct kushm_arr msr;
	struct kushm_arr cputime;	/* busy/idle/iowait/steal ns from kcpustat */
	struct kushm_table procs;
	struct kushm_table syscalls;
	struct kushm_control *ctl;
	u64 ctl_off, ctl_size;		/* user-writable byte range */
	char *info;
	u32 info_size;

	/* PMU: events[cpu * KUSHM_PMU_NUM_PRESETS + preset] */
	struct perf_event **events;
	struct perf_event **grave;	/* retired by CPU offline, same index */
	unsigned long *hp_online;	/* CPUs whose events must be (re)opened */
	u64 preset_req;			/* asked for by the presets parameter */
	u64 preset_try;			/* requested and openable on this CPU */
	int hp_state;			/* the CPU hotplug state of the events */
	u64 preset_ok;			/* created on at least one CPU */
	int preset_err[KUSHM_PMU_NUM_PRESETS];
	u64 *pmu_moved;			/* per CPU: slots that ever read non-zero */

	/* MSR */
	u64 msr_req;
	u64 msr_ok;
	int msr_err[KUSHM_MSR_NUM];
	u64 *msr_first;			/* [cpu * KUSHM_MSR_NUM + id] */
	u64 *msr_moved;			/* per CPU */
	u64 *msr_init;			/* per CPU: msr_first[] holds a reading */

	struct delayed_work work;
	bool stopping;
	u64 samples;
	u64 last_sample_ns;		/* ktime of the last sample (the work only) */
	bool settled;
	struct kushm_cfg cfg;		/* validated control values */
	u32 ctl_seen[7];		/* raw control values last judged */
	u64 rejected;

	struct kushm_pcpu __percpu *pcpu;
	struct tracepoint *tp_switch;
	struct tracepoint *tp_exit;
	struct tracepoint *tp_exec;
	struct kushm_procs pr;
	u64 proc_mask;			/* preset columns of procs kept per process */

	/* kushm_cgroups.c: the cgroups table and its deferred inserts */
	struct kushm_table cgroups;
	u32 cg_cap;			/* capacity of the cgroups table */
	u32 cg_pending;			/* node of the pending row */
	u64 cg_valid;			/* counters charged per cgroup */
	u64 cg_full;			/* inserts refused: table full */
	struct kushm_cg_pcpu __percpu *cg_pcpu;
	spinlock_t cg_grave_lock;	/* cg_grave, cg_ngrave */
	u64 *cg_grave;			/* removed ids the work deletes again */
	u32 cg_ngrave;
	struct tracepoint *tp_rmdir;

	struct miscdevice misc;
	bool misc_registered;
	struct dentry *dbg_dir;
};

extern struct kushm_dev *kushm;

/* Module parameters (kushm_main.c). */
extern unsigned int kushm_interval_ms;
extern unsigned int kushm_procs_sweep_ms;

/* kushm_region.c */
int kushm_region_create(struct kushm_dev *d, u32 procs_cap, u32 sys_cap);
void kushm_region_destroy(struct kushm_dev *d);
void kushm_region_publish(struct kushm_dev *d);
void kushm_info_append(struct kushm_dev *d, const char *fmt, ...) __printf(2, 3);
void kushm_info_unavailable(struct kushm_dev *d, const char *what, const char *source,
			    const char *kind, int err, const char *fmt, ...) __printf(6, 7);

/* kushm_sample.c */
int kushm_parse_list(const char *list, u64 *mask, bool msr);
int kushm_sample_init(struct kushm_dev *d);
void kushm_sample_exit(struct kushm_dev *d);
void kushm_sample_start(struct kushm_dev *d);
void kushm_sample_stop(struct kushm_dev *d);
void kushm_read_control(struct kushm_dev *d);
struct perf_event *kushm_event(struct kushm_dev *d, u32 cpu, u32 preset);

/* kushm_procs.c */
extern bool kushm_procs_skip_exit;
int kushm_procs_init(struct kushm_dev *d);
void kushm_procs_exit(struct kushm_dev *d);

/* kushm_cgroups.c */
struct kushm_cg_pcpu;
int kushm_cgroups_init(struct kushm_dev *d);
void kushm_cgroups_exit(struct kushm_dev *d);
void kushm_cgroups_charge(struct kushm_dev *d, struct task_struct *prev, const u64 *delta);
void kushm_cgroups_work(struct kushm_dev *d);

/* kushm_stats.c */
int kushm_table_init(struct kushm_table *t, u32 capacity);
void kushm_table_exit(struct kushm_table *t);
int kushm_table_get(struct kushm_table *t, u64 key, const void *data, u32 len, u32 *idx);
int kushm_table_delete(struct kushm_table *t, u64 key);
void kushm_table_release_rcu(struct rcu_head *rcu);
int kushm_table_lookup(u32 table, u64 key, void *out, u32 out_len);

#include "kushm_kfuncs.h"

#endif /* _KUSHM_H */
