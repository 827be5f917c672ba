// SPDX-License-Identifier: GPL-2.0
/*
 * Per-CPU sampling into the region's "pmu" and "msr" rows:
 * in-kernel perf events (perf_event_create_kernel_counter) for the PMU
 * presets, rdmsr_safe_on_cpu() for the allowlisted MSRs, both read from a
 * delayed work (process context: perf_event_read_value may sleep). The
 * work is each row's only writer. It also validates the control section.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/perf_event.h>
#include <linux/cpumask.h>
#include <linux/cpuhotplug.h>
#include <linux/cpu.h>
#include <linux/ktime.h>
#include <linux/jiffies.h>
#include <linux/kernel_stat.h>
#include <linux/tick.h>
#include <asm/msr.h>
#include <asm/processor.h>
#include "kushm.h"

static bool name_is(const char *s, size_t n, const char *want)
{
	return want && strlen(want) == n && !strncasecmp(s, want, n);
}

/**
 * kushm_parse_list - parse a presets= or msrs= parameter into a bit mask.
 * @list: "all", "none", "" or a comma list of names.
 * @mask: the result.
 * @msr: parse MSR catalogue names instead of preset names.
 * Return: 0 or -EINVAL for an unknown name.
 */
int kushm_parse_list(const char *list, u64 *mask, bool msr)
{
	u32 n = msr ? KUSHM_MSR_NUM : KUSHM_PMU_NUM_PRESETS;
	const char *p = list ? list : "";

	*mask = 0;
	if (!strcmp(p, "all")) {
		*mask = n == 64 ? ~0ULL : (1ULL << n) - 1;
		return 0;
	}
	if (!strcmp(p, "none"))
		return 0;
	while (*p) {
		size_t len = strcspn(p, ",");
		bool found = false;
		u32 i;

		for (i = 0; i < n && len; i++) {
			if (msr ? name_is(p, len, kushm_msr_catalogue[i].name) :
			    name_is(p, len, kushm_pmu_presets[i].name) ||
			    name_is(p, len, kushm_pmu_presets[i].column)) {
				*mask |= 1ULL << i;
				found = true;
			}
		}
		if (len && !found)
			return -EINVAL;
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

static u32 cpu_vendor(void)
{
	switch (boot_cpu_data.x86_vendor) {
	case X86_VENDOR_INTEL:
		return KUSHM_PMU_VENDOR_INTEL;
	case X86_VENDOR_AMD:
	case X86_VENDOR_HYGON:
		return KUSHM_PMU_VENDOR_AMD;
	}
	return KUSHM_PMU_VENDOR_GENERIC;
}

/* The event of @preset on @cpu, or NULL; callers hold cpus_read_lock or
 * run with preemption off (the pointer is cleared on CPU offline and the
 * event freed after a grace period).
 */
struct perf_event *kushm_event(struct kushm_dev *d, u32 cpu, u32 preset)
{
	if (!d->events || cpu >= d->ncpus || preset >= KUSHM_PMU_NUM_PRESETS)
		return NULL;
	return READ_ONCE(d->events[cpu * KUSHM_PMU_NUM_PRESETS + preset]);
}

static const char *errname(int err)
{
	switch (err) {
	case -ENOENT:
		return "ENOENT: no such event (no hardware PMU, e.g. a VM without a virtual PMU)";
	case -EOPNOTSUPP:
		return "EOPNOTSUPP: the PMU does not support this event";
	case -EINVAL:
		return "EINVAL: the PMU refused the event encoding";
	case -EACCES:
	case -EPERM:
		return "EACCES: not permitted";
	case -EBUSY:
		return "EBUSY: the counters are in use";
	case -ENODEV:
		return "ENODEV: no such PMU on this machine";
	case -EIO:
		return "EIO: rdmsr faulted (#GP): the CPU does not implement this MSR";
	}
	return "an error";
}

/* The device the hotplug callbacks serve (one instance). */
static struct kushm_dev *hp_dev;

static struct perf_event_attr preset_attr(u32 p)
{
	const struct kushm_pmu_event *ev = &kushm_pmu_presets[p].ev[cpu_vendor()];
	struct perf_event_attr attr = {
		.size = sizeof(attr),
		.type = ev->type,
		.config = ev->config,
		.pinned = 1,
	};

	return attr;
}

/* The info section's kind of a perf_event_create_kernel_counter error. */
static const char *perf_err_kind(int err)
{
	switch (err) {
	case -EACCES:
	case -EPERM:
		return KUSHM_INFO_KIND_PERMISSION;
	case -ENOENT:
	case -ENODEV:
		return KUSHM_INFO_KIND_NO_SOURCE;
	case -EOPNOTSUPP:
	case -EINVAL:
		return KUSHM_INFO_KIND_NOT_SUPPORTED;
	}
	return KUSHM_INFO_KIND_NOT_AVAILABLE;
}

/* Which requested presets have an event the module can open on this CPU. */
static void classify_presets(struct kushm_dev *d)
{
	u32 vendor = cpu_vendor(), p;

	for (p = 0; p < KUSHM_PMU_NUM_PRESETS; p++) {
		const struct kushm_pmu_event *ev = &kushm_pmu_presets[p].ev[vendor];

		if (!(d->preset_req & (1ULL << p))) {
			kushm_info_unavailable(d, kushm_pmu_presets[p].name, KUSHM_INFO_SOURCE_CONFIG, KUSHM_INFO_KIND_NOT_AVAILABLE, 0,
					       "the module parameter presets leaves it out");
			continue;
		}
		if (ev->flags & KUSHM_PMU_F_UNAVAILABLE) {
			kushm_info_unavailable(d, kushm_pmu_presets[p].name, KUSHM_INFO_SOURCE_PERF, KUSHM_INFO_KIND_NOT_SUPPORTED, 0,
					       "this CPU vendor has no event for it");
			continue;
		}
		if (ev->type == KUSHM_PMU_TYPE_DYNAMIC || (ev->flags & KUSHM_PMU_F_UNCORE)) {
			kushm_info_unavailable(d, kushm_pmu_presets[p].name, KUSHM_INFO_SOURCE_PERF, KUSHM_INFO_KIND_NOT_SUPPORTED, 0,
					       "it is an uncore event (%s PMU) the module does not open",
					       ev->pmu ? ev->pmu : "?");
			continue;
		}
		d->preset_try |= 1ULL << p;
		d->preset_err[p] = -ENOENT;
	}
}

/*
 * CPU hotplug. Opening or closing a software perf event takes
 * cpus_read_lock (static keys), which a hotplug callback cannot: the
 * callbacks only take note, and the sampling work (outside
 * cpus_read_lock) opens the events of CPUs that came online and releases,
 * after a grace period, those of CPUs that went offline.
 */
static int kushm_cpu_online(unsigned int cpu)
{
	struct kushm_dev *d = hp_dev;

	if (cpu < d->ncpus)
		set_bit(cpu, d->hp_online);
	return 0;
}

/*
 * kushm_cpu_offline - retire this CPU's events and publish its rows as all
 * n/a. The sched_switch probe may still hold an event of this CPU: the
 * pointers are cleared here and the events freed by the work after a grace
 * period. Runs with CPU hotplug locked, so the work, which samples and
 * empties the graveyard under cpus_read_lock, is not running that part.
 */
static int kushm_cpu_offline(unsigned int cpu)
{
	struct kushm_dev *d = hp_dev;
	u64 zero[KUSHM_MSR_NUM] = {};
	u32 p, i;

	if (cpu >= d->ncpus)
		return 0;
	for (p = 0; p < KUSHM_PMU_NUM_PRESETS; p++) {
		struct perf_event *old;

		i = cpu * KUSHM_PMU_NUM_PRESETS + p;
		old = xchg(&d->events[i], NULL);
		/*
		 * The work empties the graveyard before it opens events, and
		 * opens them only for online CPUs: a live event never meets
		 * an occupied grave.
		 */
		if (old && !WARN_ON_ONCE(d->grave[i]))
			d->grave[i] = old;
	}
	kushm_arr_update(&d->pmu, cpu, ktime_get_ns(), 0, zero, KUSHM_PMU_NUM_PRESETS);
	kushm_arr_update(&d->msr, cpu, ktime_get_ns(), 0, zero, KUSHM_MSR_NUM);
	kushm_arr_update(&d->cputime, cpu, ktime_get_ns(), 0, zero, KUSHM_NUM_CPU_TIME);
	return 0;
}

/*
 * hotplug_work - the deferred half of CPU hotplug: free retired events
 * after a grace period, then (re)open the events of CPUs that came online.
 * Runs in the work (or init), not holding cpus_read_lock.
 */
static void hotplug_work(struct kushm_dev *d)
{
	struct perf_event *e;
	bool any = false;
	u32 cpu, p, i;

	cpus_read_lock();
	for (i = 0; i < d->ncpus * KUSHM_PMU_NUM_PRESETS; i++)
		any |= d->grave[i] != NULL;
	cpus_read_unlock();
	if (any) {
		synchronize_rcu();	/* no sched_switch probe holds a retired event */
		for (i = 0; i < d->ncpus * KUSHM_PMU_NUM_PRESETS; i++) {
			cpus_read_lock();
			e = d->grave[i];
			d->grave[i] = NULL;
			cpus_read_unlock();
			if (e)
				perf_event_release_kernel(e);
		}
	}
	for (cpu = 0; cpu < d->ncpus; cpu++) {
		if (!test_and_clear_bit(cpu, d->hp_online))
			continue;
		for (p = 0; p < KUSHM_PMU_NUM_PRESETS; p++) {
			struct perf_event_attr attr = preset_attr(p);
			struct perf_event *old;

			if (!(d->preset_try & (1ULL << p)))
				continue;
			/* -ENODEV if the CPU went offline again meanwhile. */
			e = perf_event_create_kernel_counter(&attr, cpu, NULL, NULL, NULL);
			if (IS_ERR(e)) {
				if (PTR_ERR(e) != -ENODEV)
					d->preset_err[p] = PTR_ERR(e);
				e = NULL;
			} else {
				d->preset_ok |= 1ULL << p;
			}
			i = cpu * KUSHM_PMU_NUM_PRESETS + p;
			cpus_read_lock();
			if (cpu_online(cpu)) {
				old = xchg(&d->events[i], e);
				e = NULL;
			} else {
				old = NULL;	/* offline again: it reopens later */
			}
			cpus_read_unlock();
			if (old) {
				synchronize_rcu();
				perf_event_release_kernel(old);
			}
			if (e)
				perf_event_release_kernel(e);
		}
		d->pmu_moved[cpu] = 0;
		d->msr_moved[cpu] = 0;
		d->msr_init[cpu] = 0;
	}
}

static void release_events(struct kushm_dev *d)
{
	u32 i;

	for (i = 0; d->events && i < d->ncpus * KUSHM_PMU_NUM_PRESETS; i++)
		if (d->events[i])
			perf_event_release_kernel(d->events[i]);
	for (i = 0; d->grave && i < d->ncpus * KUSHM_PMU_NUM_PRESETS; i++)
		if (d->grave[i])
			perf_event_release_kernel(d->grave[i]);
	kfree(d->events);
	kfree(d->grave);
	bitmap_free(d->hp_online);
	d->events = NULL;
	d->grave = NULL;
	d->hp_online = NULL;
}

static u32 msr_vendor_bit(void)
{
	switch (cpu_vendor()) {
	case KUSHM_PMU_VENDOR_INTEL:
		return KUSHM_MSR_VENDOR_INTEL;
	case KUSHM_PMU_VENDOR_AMD:
		return KUSHM_MSR_VENDOR_AMD;
	}
	return 0;
}

static bool allowlisted(u32 addr)
{
	u32 i;

	for (i = 0; i < ARRAY_SIZE(kushm_msr_allowlist); i++)
		if (kushm_msr_allowlist[i].addr == addr)
			return true;
	return false;
}

static void probe_msrs(struct kushm_dev *d)
{
	u32 vbit = msr_vendor_bit(), i, lo, hi;
	int cpu = cpumask_first(cpu_online_mask), err;

	for (i = 0; i < KUSHM_MSR_NUM; i++) {
		const struct kushm_msr_entry *m = &kushm_msr_catalogue[i];

		if (!(d->msr_req & (1ULL << i))) {
			kushm_info_unavailable(d, m->name, KUSHM_INFO_SOURCE_CONFIG, KUSHM_INFO_KIND_NOT_AVAILABLE, 0,
					       "the module parameter msrs leaves it out");
			continue;
		}
		if (!allowlisted(m->addr)) {
			kushm_info_unavailable(d, m->name, KUSHM_INFO_SOURCE_MSR, KUSHM_INFO_KIND_NOT_ALLOWED, 0,
					       "MSR 0x%x is not on the allowlist", m->addr);
			continue;
		}
		if (!boot_cpu_has(X86_FEATURE_MSR)) {
			kushm_info_unavailable(d, m->name, KUSHM_INFO_SOURCE_MSR, KUSHM_INFO_KIND_NOT_SUPPORTED, 0,
					       "the CPU has no MSRs");
			continue;
		}
		if (!(m->vendors & vbit)) {
			kushm_info_unavailable(d, m->name, KUSHM_INFO_SOURCE_MSR, KUSHM_INFO_KIND_NOT_SUPPORTED, 0,
					       "MSR 0x%x is not architectural on this CPU vendor", m->addr);
			continue;
		}
		err = rdmsr_safe_on_cpu(cpu, m->addr, &lo, &hi);
		if (err) {
			d->msr_err[i] = err;
			kushm_info_unavailable(d, m->name, KUSHM_INFO_SOURCE_MSR, KUSHM_INFO_KIND_NOT_SUPPORTED, -EIO,
					       "rdmsr 0x%x failed (%s)", m->addr, errname(-EIO));
			continue;
		}
		d->msr_ok |= 1ULL << i;
	}
}

/**
 * kushm_sample_init - open the perf events and probe the MSRs, noting in
 * the info section every preset and MSR that is not available and why.
 * @d: the device.
 * Return: 0 or -ENOMEM; nothing is left allocated on error.
 */
int kushm_sample_init(struct kushm_dev *d)
{
	int err;
	u32 p;

	d->pmu_moved = kcalloc(d->ncpus, sizeof(u64), GFP_KERNEL);
	if (!d->pmu_moved)
		return -ENOMEM;
	d->msr_moved = kcalloc(d->ncpus, sizeof(u64), GFP_KERNEL);
	if (!d->msr_moved) {
		err = -ENOMEM;
		goto free_pmu_moved;
	}
	d->msr_first = kcalloc((size_t)d->ncpus * KUSHM_MSR_NUM, sizeof(u64), GFP_KERNEL);
	if (!d->msr_first) {
		err = -ENOMEM;
		goto free_msr_moved;
	}
	d->msr_init = kcalloc(d->ncpus, sizeof(u64), GFP_KERNEL);
	if (!d->msr_init) {
		err = -ENOMEM;
		goto free_msr_first;
	}
	d->events = kcalloc((size_t)d->ncpus * KUSHM_PMU_NUM_PRESETS, sizeof(*d->events),
			    GFP_KERNEL);
	d->grave = kcalloc((size_t)d->ncpus * KUSHM_PMU_NUM_PRESETS, sizeof(*d->grave),
			   GFP_KERNEL);
	d->hp_online = bitmap_zalloc(d->ncpus, GFP_KERNEL);
	if (!d->events || !d->grave || !d->hp_online) {
		err = -ENOMEM;
		goto free_events;
	}
	d->cfg.interval_us = kushm_interval_ms * 1000;
	d->cfg.kx100 = KUSHM_DEFAULT_KX100;
	d->cfg.warmup = KUSHM_DEFAULT_WARMUP;
	classify_presets(d);
	hp_dev = d;
	/* Notes every online CPU now, and CPUs that come and go later. */
	err = cpuhp_setup_state(CPUHP_AP_ONLINE_DYN, "kushm:online", kushm_cpu_online,
				kushm_cpu_offline);
	if (err < 0)
		goto free_events;
	d->hp_state = err;
	hotplug_work(d);	/* opens the events of the online CPUs */
	for (p = 0; p < KUSHM_PMU_NUM_PRESETS; p++)
		if ((d->preset_try & (1ULL << p)) && !(d->preset_ok & (1ULL << p)))
			kushm_info_unavailable(d, kushm_pmu_presets[p].name, KUSHM_INFO_SOURCE_PERF,
					       perf_err_kind(d->preset_err[p]), d->preset_err[p],
					       "perf_event_create_kernel_counter failed with %s",
					       errname(d->preset_err[p]));
	cpus_read_lock();
	probe_msrs(d);
	cpus_read_unlock();
	INIT_DELAYED_WORK(&d->work, NULL);
	return 0;

free_events:
	release_events(d);
	kfree(d->msr_init);
free_msr_first:
	kfree(d->msr_first);
free_msr_moved:
	kfree(d->msr_moved);
free_pmu_moved:
	kfree(d->pmu_moved);
	return err;
}

/**
 * kushm_sample_exit - release the perf events and sampling state.
 * @d: the device (sampling stopped).
 */
void kushm_sample_exit(struct kushm_dev *d)
{
	/* The sched_switch probe is gone: release without grace periods. */
	cpuhp_remove_state_nocalls(d->hp_state);
	release_events(d);
	kfree(d->msr_init);
	kfree(d->msr_first);
	kfree(d->msr_moved);
	kfree(d->pmu_moved);
}

/*
 * judge - validate one user-writable control field: 0 means the default;
 * out of [lo, hi] means the default too, counted once per distinct bad
 * value in d->rejected (published as the header's control_rejected).
 */
static u32 judge(struct kushm_dev *d, u32 raw, u32 *seen, u32 def, u32 lo, u32 hi)
{
	bool bad = raw && (raw < lo || raw > hi);

	if (bad && raw != *seen)
		d->rejected++;
	*seen = raw;
	return !raw || bad ? def : raw;
}

/**
 * kushm_read_control - read the user-writable control section once per
 * field (READ_ONCE), range-check it and publish the validated values.
 * Nothing read here is used as an offset, a size or a pointer.
 * @d: the device.
 */
void kushm_read_control(struct kushm_dev *d)
{
	struct kushm_control *c = d->ctl;
	u32 iv = READ_ONCE(c->interval_us);
	u32 kx = READ_ONCE(c->kx100);
	u32 wu = READ_ONCE(c->warmup);

	WRITE_ONCE(d->cfg.interval_us, judge(d, iv, &d->ctl_seen[0], kushm_interval_ms * 1000,
					     KUSHM_MIN_INTERVAL_US, KUSHM_MAX_INTERVAL_US));
	WRITE_ONCE(d->cfg.kx100, judge(d, kx, &d->ctl_seen[1], KUSHM_DEFAULT_KX100, 1,
				       KUSHM_MAX_KX100));
	WRITE_ONCE(d->cfg.warmup, judge(d, wu, &d->ctl_seen[2], KUSHM_DEFAULT_WARMUP, 1,
					KUSHM_MAX_WARMUP));
	/*
	 * The threshold rules (ABI 1.4): the kfuncs read and validate these
	 * themselves on use (kushm_policy_of, kushm_valid_decay); judged here
	 * only so that a bad value is counted.
	 */
	judge(d, READ_ONCE(c->th_mode), &d->ctl_seen[3], 0, KUSHM_TH_MODE_SIGMA, KUSHM_TH_MODE_INTERP);
	judge(d, READ_ONCE(c->qppm), &d->ctl_seen[4], 0, 1, KUSHM_MAX_QPPM);
	judge(d, READ_ONCE(c->factor_x1000), &d->ctl_seen[5], 0, 1, KUSHM_MAX_FACTOR_X1000);
	judge(d, READ_ONCE(c->decay_shift), &d->ctl_seen[6], 0, KUSHM_MIN_DECAY_SHIFT,
	      KUSHM_MAX_DECAY_SHIFT);
	/* The producer's fields: rewritten from private state every time. */
	WRITE_ONCE(c->magic, KUSHM_CONTROL_MAGIC);
	WRITE_ONCE(c->version, 1);
	/* In the read-only header, where users cannot overwrite it (ABI 1.2). */
	WRITE_ONCE(d->hdr->control_rejected, d->rejected);
}

static void sample_pmu(struct kushm_dev *d, u32 cpu, u64 now)
{
	u64 vals[KUSHM_PMU_NUM_PRESETS] = {}, valid = 0;
	u32 p;

	for (p = 0; p < KUSHM_PMU_NUM_PRESETS; p++) {
		struct perf_event *e = kushm_event(d, cpu, p);
		u64 en = 0, run = 0, v;

		if (!e)
			continue;
		v = perf_event_read_value(e, &en, &run);
		if (run == 0 && en != 0)
			continue;		/* never scheduled: no reading */
		if (run && run < en)
			v = mul_u64_u64_div_u64(v, en, run);
		vals[p] = v;
		if (v)
			d->pmu_moved[cpu] |= 1ULL << p;
		if (d->pmu_moved[cpu] & (1ULL << p))
			valid |= 1ULL << p;
	}
	kushm_arr_update(&d->pmu, cpu, now, valid, vals, KUSHM_PMU_NUM_PRESETS);
}

/*
 * The CPU's time accounting, as /proc/stat computes it (fs/proc/stat.c):
 * kcpustat, with idle and iowait from the tick-sched counters when NO_HZ
 * keeps them (kcpustat's own stop while the tick is off).
 */
static void sample_cputime(struct kushm_dev *d, u32 cpu, u64 now)
{
	u64 vals[KUSHM_NUM_CPU_TIME] = {}, idle, iowait;
	struct kernel_cpustat kcs;
	const u64 *c = kcs.cpustat;

	kcpustat_cpu_fetch(&kcs, cpu);
	idle = get_cpu_idle_time_us(cpu, NULL);
	idle = idle == -1ULL ? c[CPUTIME_IDLE] : idle * NSEC_PER_USEC;
	iowait = get_cpu_iowait_time_us(cpu, NULL);
	iowait = iowait == -1ULL ? c[CPUTIME_IOWAIT] : iowait * NSEC_PER_USEC;
	vals[KUSHM_CPU_TIME_USER] = c[CPUTIME_USER] + c[CPUTIME_NICE];
	vals[KUSHM_CPU_TIME_SYSTEM] = c[CPUTIME_SYSTEM] + c[CPUTIME_IRQ] + c[CPUTIME_SOFTIRQ];
	vals[KUSHM_CPU_TIME_BUSY] = vals[KUSHM_CPU_TIME_USER] + vals[KUSHM_CPU_TIME_SYSTEM];
	vals[KUSHM_CPU_TIME_IDLE] = idle;
	vals[KUSHM_CPU_TIME_IO_WAIT] = iowait;
	vals[KUSHM_CPU_TIME_STEAL] = c[CPUTIME_STEAL];
	kushm_arr_update(&d->cputime, cpu, now, (1ULL << KUSHM_NUM_CPU_TIME) - 1, vals,
			 KUSHM_NUM_CPU_TIME);
}

static void sample_msr(struct kushm_dev *d, u32 cpu, u64 now)
{
	u64 vals[KUSHM_MSR_NUM] = {}, valid = 0;
	u64 *first = &d->msr_first[(size_t)cpu * KUSHM_MSR_NUM];
	u32 i, lo, hi;

	for (i = 0; i < KUSHM_MSR_NUM; i++) {
		u64 v;

		if (!(d->msr_ok & (1ULL << i)))
			continue;
		if (rdmsr_safe_on_cpu(cpu, kushm_msr_catalogue[i].addr, &lo, &hi))
			continue;
		v = (u64)hi << 32 | lo;
		vals[i] = v;
		if (!(d->msr_init[cpu] & (1ULL << i))) {
			first[i] = v;
			d->msr_init[cpu] |= 1ULL << i;
		}
		/*
		 * Emulators (qemu's TCG) return 0 without a fault for MSRs
		 * they do not implement: a value that reads 0 and never moves
		 * is not a reading.
		 */
		if (v != 0 || v != first[i])
			d->msr_moved[cpu] |= 1ULL << i;
		if (d->msr_moved[cpu] & (1ULL << i))
			valid |= 1ULL << i;
	}
	kushm_arr_update(&d->msr, cpu, now, valid, vals, KUSHM_MSR_NUM);
}

/*
 * After a second of samples, name the MSRs that read 0 and never moved
 * (emulators answer 0 for MSRs they lack). Perf events say themselves
 * whether they exist; a software counter that has not moved yet only
 * reads n/a until it does.
 */
static void settle(struct kushm_dev *d)
{
	u64 msr_any = 0;
	u32 cpu, i;

	for (cpu = 0; cpu < d->ncpus; cpu++)
		msr_any |= d->msr_moved[cpu];
	for (i = 0; i < KUSHM_MSR_NUM; i++)
		if ((d->msr_ok & (1ULL << i)) && !(msr_any & (1ULL << i)))
			kushm_info_unavailable(d, kushm_msr_catalogue[i].name, KUSHM_INFO_SOURCE_MSR, KUSHM_INFO_KIND_NOT_SUPPORTED, 0,
					       "MSR 0x%x reads 0 and never moves (not implemented by this CPU or hypervisor)",
					       kushm_msr_catalogue[i].addr);
	d->settled = true;
}

/*
 * The work runs every sampling interval, but at least every
 * KUSHM_HEARTBEAT_EVERY_US: it reads the control section and refreshes
 * the heartbeat each time, and samples only when the interval since the
 * last sample has passed. So a user who set a 60 s interval and lowers
 * it again is heard within 250 ms, and a reader tells a dead module from
 * a slow one within seconds whatever the interval.
 */
static void kushm_work(struct work_struct *w)
{
	struct kushm_dev *d = container_of(to_delayed_work(w), struct kushm_dev, work);
	u64 iv_ns, now, next_ns, every_ns = (u64)KUSHM_HEARTBEAT_EVERY_US * NSEC_PER_USEC;
	int cpu;

	hotplug_work(d);
	kushm_read_control(d);
	kushm_cgroups_work(d);
	iv_ns = (u64)READ_ONCE(d->cfg.interval_us) * NSEC_PER_USEC;
	now = ktime_get_ns();
	/* Jiffies round the delay up: a tick early still counts as due. */
	if (!d->samples || now - d->last_sample_ns + TICK_NSEC > iv_ns) {
		d->last_sample_ns = now;
		cpus_read_lock();
		for_each_online_cpu(cpu) {
			if (cpu >= d->ncpus)
				break;
			now = ktime_get_ns();
			sample_pmu(d, cpu, now);
			sample_msr(d, cpu, now);
			sample_cputime(d, cpu, now);
		}
		cpus_read_unlock();
		d->samples++;
		if (!d->settled && d->samples >= KUSHM_SETTLE_SAMPLES &&
		    d->samples * kushm_interval_ms >= MSEC_PER_SEC)
			settle(d);
	}
	WRITE_ONCE(d->hdr->heartbeat_period_ns, min(iv_ns, every_ns));
	WRITE_ONCE(d->hdr->heartbeat_ns, ktime_get_ns());
	if (READ_ONCE(d->hdr->state) != KUSHM_STATE_RUNNING)
		smp_store_release(&d->hdr->state, KUSHM_STATE_RUNNING);	/* after the first rows */
	/* The next sample, or the next heartbeat if that comes first. */
	now = ktime_get_ns();
	next_ns = d->last_sample_ns + iv_ns > now ? d->last_sample_ns + iv_ns - now : 0;
	next_ns = min(next_ns, every_ns);
	if (!READ_ONCE(d->stopping))
		schedule_delayed_work(&d->work, usecs_to_jiffies(DIV_ROUND_UP_ULL(next_ns, NSEC_PER_USEC)));
}

/**
 * kushm_sample_start - start the periodic sampling (first sample now).
 * @d: the device.
 */
void kushm_sample_start(struct kushm_dev *d)
{
	INIT_DELAYED_WORK(&d->work, kushm_work);
	d->stopping = false;
	schedule_delayed_work(&d->work, 0);
}

/**
 * kushm_sample_stop - stop sampling and wait for the work to finish.
 * @d: the device.
 */
void kushm_sample_stop(struct kushm_dev *d)
{
	WRITE_ONCE(d->stopping, true);
	cancel_delayed_work_sync(&d->work);
}
