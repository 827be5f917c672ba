// SPDX-License-Identifier: GPL-2.0
/*
 * kushm_kfuncs.c - BPF kfuncs over the kushm region: bpf_kushm_read_counter,
 * bpf_kushm_table_lookup, bpf_kushm_syscall_threshold and
 * bpf_kushm_record_latency. Names, arguments, return values and the
 * concurrency contract are the ABI of docs/helpers.md; the userspace eBPF
 * runtime (userside/bpfrt) implements the same names with the same
 * semantics, so one BPF C source runs on both sides.
 *
 * NOTE TO THE MODULE CORE: see kushm_kfuncs.h (init, attach, detach). The
 * reads go through the core's kushm_table_lookup() (lock-free,
 * seq-validated) and kushm_arr_snapshot(); this file is the only writer of
 * the "syscalls" table's slots (integer Welford, docs/helpers.md), finding
 * or inserting a syscall's node with kushm_table_get().
 *
 * Module BTF is required for the kfuncs to exist: without it
 * register_btf_kfunc_id_set() returns 0 and the kernel only logs "missing
 * module BTF, cannot register kfuncs". Debian 6.1: build with
 * KDIR=$(scripts/kbtf/kbtf.sh kdir 6.1).
 *
 * Every kfunc: never sleeps or waits (the core's writers use trylock-free
 * per-CPU slots; a busy NMI nesting returns -EBUSY), validates every
 * argument, and touches only region memory through the core's bounded,
 * validated accessors.
 */
#include <linux/bpf.h>
#include <linux/btf.h>
#include <linux/btf_ids.h>
#include <linux/math64.h>
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/rcupdate.h>
#include <linux/version.h>

#include "kushm.h"
#include "kushm_atomicarr.h"
#include "generated/kushm_pmu.h"
#include "kushm_kfuncs.h"
#include "kushm_hist.h"

/* 6.1 has no __bpf_kfunc and uses BTF_SET8; 6.8+ has BTF_KFUNCS_START. */
#ifndef __bpf_kfunc
#define __bpf_kfunc __used noinline
#endif
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 8, 0)
#define KUSHM_KFUNCS_START(n) BTF_SET8_START(n)
#define KUSHM_KFUNCS_END(n) BTF_SET8_END(n)
#else
#define KUSHM_KFUNCS_START(n) BTF_KFUNCS_START(n)
#define KUSHM_KFUNCS_END(n) BTF_KFUNCS_END(n)
#endif

static bool kf_registered;
static bool kf_attached;
static DEFINE_PER_CPU(int, kf_busy);

/* The device while attached; callers hold rcu_read_lock(). */
static struct kushm_dev *kf_dev(void)
{
	return READ_ONCE(kf_attached) ? READ_ONCE(kushm) : NULL;
}

/*
 * Per-CPU scratch for reading a syscall's slots (672 bytes each) and
 * merging them (about 3 KiB): too large for the stack, and for the
 * modules' static per-CPU area, so allocated at attach (alloc_percpu) and
 * freed at detach after the grace period. Used with interrupts off and
 * kf_busy held by this CPU only, so no other user on this CPU (an NMI
 * finds kf_busy set and backs off) can touch it.
 */
struct kf_scratch {
	struct kushm_syscall_slot tmp;
	struct kushm_syscall_merged m;
};
static struct kf_scratch __percpu *kf_scr;

/* The merged slots of syscall nr into this CPU's scratch (0 or -errno);
 * interrupts off, kf_busy held. */
static int kf_syscall_merged(struct kushm_dev *d, u64 nr, struct kushm_syscall_merged **m)
{
	struct kf_scratch *sc = this_cpu_ptr(kf_scr);

	*m = &sc->m;
	if (d->syscalls.h.value_size < sizeof(struct kushm_syscall_slot))
		return -EUCLEAN;
	return kushm_htab_lookup_tmp(&d->syscalls.h, nr, &sc->m, sizeof(sc->m),
				     kushm_merge_syscall_slot, (u64 *)&sc->tmp, sizeof(sc->tmp),
				     sizeof(sc->tmp));
}

/* Only the Welford part of the slots of nr, merged (what the k·σ rule and
 * table_lookup need: 64 of the 672 bytes of each slot). */
static int kf_syscall_stat(struct kushm_dev *d, u64 nr, struct kushm_syscall_stat *s)
{
	struct kf_scratch *sc = this_cpu_ptr(kf_scr);

	return kushm_htab_lookup_tmp(&d->syscalls.h, nr, s, sizeof(*s), kushm_merge_syscall,
				     (u64 *)&sc->tmp, sizeof(sc->tmp), sizeof(*s));
}

/* The rule of syscall nr: the global settings and nr's policy word. */
static void kf_policy(struct kushm_dev *d, u32 nr, struct kushm_policy *p)
{
	kushm_policy_of(p, READ_ONCE(d->ctl->th_mode), READ_ONCE(d->cfg.kx100),
			READ_ONCE(d->cfg.warmup), READ_ONCE(d->ctl->qppm),
			READ_ONCE(d->ctl->factor_x1000), READ_ONCE(d->ctl->syscall_policy[nr]));
}

/* The adaptive threshold of docs/helpers.md for syscall nr under its
 * rule; interrupts off, kf_busy held. */
static u64 kf_adaptive(struct kushm_dev *d, u32 nr)
{
	struct kushm_syscall_merged *m;
	struct kushm_syscall_stat st;
	struct kushm_policy p;

	kf_policy(d, nr, &p);
	if (p.mode == KUSHM_TH_MODE_SIGMA)
		return kf_syscall_stat(d, nr, &st) ? 0 :
		       kushm_sigma_threshold(&st, p.kx100, p.warmup);
	if (kf_syscall_merged(d, nr, &m))
		return 0;
	return kushm_policy_threshold(m, &p);
}

/* Enter the per-CPU section the scratch needs: false when this CPU is
 * already inside it (an NMI, or a program run from a nested context). */
static bool kf_enter(unsigned long *flags)
{
	local_irq_save(*flags);
	if (this_cpu_inc_return(kf_busy) == 1)
		return true;
	this_cpu_dec(kf_busy);
	local_irq_restore(*flags);
	return false;
}

static void kf_exit(unsigned long flags)
{
	this_cpu_dec(kf_busy);
	local_irq_restore(flags);
}

static u64 kf_threshold(struct kushm_dev *d, u32 nr)
{
	/* user-writable: read once; any non-zero value is a valid threshold */
	u64 ov = READ_ONCE(d->ctl->syscall_override_ns[nr]);
	unsigned long flags;
	u64 th = 0;

	if (ov)
		return ov;
	if (kf_enter(&flags)) {
		th = kf_adaptive(d, nr);
		kf_exit(flags);
	}
	return th;
}

__diag_push();
__diag_ignore_all("-Wmissing-prototypes", "kfuncs are global functions found through BTF");

static int kf_read_counter(struct kushm_dev *d, u32 cpu, u32 preset, u64 *value)
{
	u64 vals[KUSHM_PMU_NUM_PRESETS], valid, t;
	int err;

	if (!value)
		return -EINVAL;
	*value = 0;
	if (preset >= KUSHM_PMU_NUM_PRESETS)
		return -EINVAL;
	if (!d)
		return -ENODATA;
	if (cpu >= d->ncpus || cpu >= d->pmu.rows)
		return -EINVAL;
	if (preset >= d->pmu.slots)
		return -ENODATA;
	err = kushm_arr_snapshot(&d->pmu, cpu, &t, &valid, vals, preset + 1);
	if (err)
		return err; /* -EAGAIN */
	if (!(valid & (1ULL << preset)))
		return -ENODATA;
	*value = vals[preset];
	return 0;
}

__bpf_kfunc int bpf_kushm_read_counter(u32 cpu, u32 preset, u64 *value)
{
	int ret;

	rcu_read_lock();
	ret = kf_read_counter(kf_dev(), cpu, preset, value);
	rcu_read_unlock();
	return ret;
}

__bpf_kfunc int bpf_kushm_table_lookup(u32 table, u64 key, void *buf, u32 buf__sz)
{
	struct kushm_dev *d;
	u32 need;
	int err;

	switch (table) {
	case KUSHM_TABLE_PROCS:
		need = sizeof(struct kushm_proc_stat);
		break;
	case KUSHM_TABLE_SYSCALLS:
		need = sizeof(struct kushm_syscall_stat);
		break;
	default:
		return -EINVAL;
	}
	if (!buf || buf__sz < need)
		return -E2BIG;
	rcu_read_lock();
	d = kf_dev();
	if (!d) {
		err = -ENODATA;
	} else if (table == KUSHM_TABLE_SYSCALLS) {
		unsigned long flags;

		err = -EBUSY;
		if (kf_enter(&flags)) {
			err = kf_syscall_stat(d, key, buf);
			kf_exit(flags);
		}
	} else {
		err = kushm_table_lookup(table, key, buf, need);
	}
	rcu_read_unlock();
	if (err == -ENODEV)
		return -ENODATA;
	return err ? err : need;
}

__bpf_kfunc u64 bpf_kushm_syscall_threshold(u32 nr)
{
	struct kushm_dev *d;
	u64 th = 0;

	if (nr >= KUSHM_NUM_SYSCALL_OVERRIDES)
		return 0;
	rcu_read_lock();
	d = kf_dev();
	if (d)
		th = kf_threshold(d, nr);
	rcu_read_unlock();
	return th;
}

/*
 * Per-CPU cache of the adaptive thresholds used by record_latency: the
 * merge over every CPU's slot costs O(ncpus), so each CPU recomputes a
 * syscall's adaptive threshold every KF_TH_REFRESH of its own samples (and
 * on every sample while it is 0, i.e. during the warm-up). Overrides are
 * read on every call and take effect at once. Accessed with interrupts off
 * and kf_busy held: one user per CPU.
 */
#define KF_TH_REFRESH 32
struct kf_thcache {
	u64 th[KUSHM_NUM_SYSCALL_OVERRIDES];
	u32 gen[KUSHM_NUM_SYSCALL_OVERRIDES];
	u8 age[KUSHM_NUM_SYSCALL_OVERRIDES];
};
static DEFINE_PER_CPU(struct kf_thcache, kf_thc);
/* Bumped on every outlier of nr (rare by design): an outlier moves the
 * statistics most, so every CPU recomputes on its next sample. */
static u32 kf_gen[KUSHM_NUM_SYSCALL_OVERRIDES];

static u64 kf_record_threshold(struct kushm_dev *d, u32 nr)
{
	struct kf_thcache *c = this_cpu_ptr(&kf_thc);
	u64 ov = READ_ONCE(d->ctl->syscall_override_ns[nr]);
	u32 gen = READ_ONCE(kf_gen[nr]);

	if (ov)
		return ov;
	if (!c->age[nr] || !c->th[nr] || c->gen[nr] != gen) {
		c->th[nr] = kf_adaptive(d, nr);
		c->gen[nr] = gen;
		c->age[nr] = KF_TH_REFRESH;
	}
	c->age[nr]--;
	return c->th[nr];
}

static int kf_record(struct kushm_dev *d, u32 nr, u64 x)
{
	struct kushm_syscall_slot *v;
	struct kushm_slot *slot;
	unsigned long flags;
	u64 th;
	u32 idx, seq, cpu, h;
	int err;

	if (in_nmi())
		return -EBUSY; /* kushm_table_get may take the table's lock */
	local_irq_save(flags);
	if (this_cpu_inc_return(kf_busy) != 1) {
		err = -EBUSY;
		goto out;
	}
	/* The decision uses the threshold in force before this sample. */
	th = kf_record_threshold(d, nr);
	err = kushm_table_get(&d->syscalls, nr, NULL, 0, &idx);
	if (err)
		goto out;
	cpu = smp_processor_id();
	if (cpu >= d->syscalls.h.nslots) {
		err = -ENODATA;
		goto out;
	}
	slot = kushm_htab_slot(&d->syscalls.h, idx, cpu);
	v = (struct kushm_syscall_slot *)kushm_slot_value(slot);
	h = kushm_valid_decay(READ_ONCE(d->ctl->decay_shift));
	seq = kushm_slot_begin(slot); /* U1 */
	kushm_slot_record(v, x, th && x > th, h); /* U2 */
	kushm_slot_end(slot, seq);    /* U3 */
	err = th && x > th;
	if (err)
		WRITE_ONCE(kf_gen[nr], READ_ONCE(kf_gen[nr]) + 1);
out:
	this_cpu_dec(kf_busy);
	local_irq_restore(flags);
	return err;
}

__bpf_kfunc int bpf_kushm_record_latency(u32 nr, u64 latency_ns)
{
	struct kushm_dev *d;
	int ret = -ENODATA;

	if (nr >= KUSHM_NUM_SYSCALL_OVERRIDES)
		return -EINVAL;
	rcu_read_lock();
	d = kf_dev();
	if (d)
		ret = kf_record(d, nr, latency_ns);
	rcu_read_unlock();
	return ret;
}

__diag_pop();

KUSHM_KFUNCS_START(kushm_kfunc_ids)
BTF_ID_FLAGS(func, bpf_kushm_read_counter)
BTF_ID_FLAGS(func, bpf_kushm_table_lookup)
BTF_ID_FLAGS(func, bpf_kushm_syscall_threshold)
BTF_ID_FLAGS(func, bpf_kushm_record_latency)
KUSHM_KFUNCS_END(kushm_kfunc_ids)

static const struct btf_kfunc_id_set kushm_kfunc_set = {
	.owner = THIS_MODULE,
	.set = &kushm_kfunc_ids,
};

int kushm_kfuncs_init(void)
{
	int err;

	err = register_btf_kfunc_id_set(BPF_PROG_TYPE_TRACING, &kushm_kfunc_set);
	if (!err)
		err = register_btf_kfunc_id_set(BPF_PROG_TYPE_SYSCALL, &kushm_kfunc_set);
	if (err) {
		pr_warn("registering kfuncs failed: %d\n", err);
		return err;
	}
	/* Registration "succeeds" without module BTF: say so. */
#ifdef CONFIG_DEBUG_INFO_BTF_MODULES
	kf_registered = THIS_MODULE->btf_data_size > 0;
#endif
	if (!kf_registered)
		pr_warn("module has no BTF: bpf_kushm_* kfuncs are unavailable (build with scripts/kbtf)\n");
	return 0;
}

int kushm_kfuncs_attach(void *region, u64 size)
{
	struct kushm_dev *d = READ_ONCE(kushm);

	if (!d || d->region != region || d->size != size || !d->ctl)
		return -EINVAL;
	if (!kf_scr) {
		kf_scr = alloc_percpu(struct kf_scratch);
		if (!kf_scr)
			return -ENOMEM;
	}
	WRITE_ONCE(kf_attached, true);
	return 0;
}

/* kfunc sets cannot be unregistered; a BPF program using them pins the
 * module, so detach only has to wait for kfuncs already running. */
void kushm_kfuncs_detach(void)
{
	WRITE_ONCE(kf_attached, false);
	synchronize_rcu();
	free_percpu(kf_scr);
	kf_scr = NULL;
}

bool kushm_kfuncs_registered(void)
{
	return kf_registered;
}
