// SPDX-License-Identifier: GPL-2.0
/*
 * Allocation and layout of the region, exactly as
 * docs/region-format.md and shm.Create lay it out: header page, then
 * page-aligned sections schema, pmu, msr, cputime, procs, syscalls,
 * control, info.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/vmalloc.h>
#include <linux/string.h>
#include <linux/ktime.h>
#include <linux/cpumask.h>
#include <linux/slab.h>
#include "kushm.h"
#include "generated/kushm_columns.h"

enum { SEC_SCHEMA, SEC_PMU, SEC_MSR, SEC_CPUTIME, SEC_PROCS, SEC_SYSCALLS, SEC_PMU_MUX, SEC_CGROUPS,
       SEC_CONTROL, SEC_INFO };

/*
 * The schema: the generated kushm_columns table (internal/abi/schema.go,
 * the same declarations the daemon builds its schema from), in the
 * section order of the enum above.
 */
static const u32 col_first[KUSHM_NSECTIONS] = {
	[SEC_PMU] = KUSHM_COLS_PMU_FIRST, [SEC_MSR] = KUSHM_COLS_MSR_FIRST,
	[SEC_CPUTIME] = KUSHM_COLS_CPUTIME_FIRST,
	[SEC_PROCS] = KUSHM_COLS_PROCS_FIRST, [SEC_SYSCALLS] = KUSHM_COLS_SYSCALLS_FIRST,
	[SEC_PMU_MUX] = KUSHM_COLS_PMU_MUX_FIRST, [SEC_CGROUPS] = KUSHM_COLS_CGROUPS_FIRST,
};
static const u32 col_count[KUSHM_NSECTIONS] = {
	[SEC_PMU] = KUSHM_COLS_PMU_COUNT, [SEC_MSR] = KUSHM_COLS_MSR_COUNT,
	[SEC_CPUTIME] = KUSHM_COLS_CPUTIME_COUNT,
	[SEC_PROCS] = KUSHM_COLS_PROCS_COUNT, [SEC_SYSCALLS] = KUSHM_COLS_SYSCALLS_COUNT,
	[SEC_PMU_MUX] = KUSHM_COLS_PMU_MUX_COUNT, [SEC_CGROUPS] = KUSHM_COLS_CGROUPS_COUNT,
};

static u64 page_round(u64 v)
{
	return round_up(v, PAGE_SIZE);
}

/**
 * kushm_region_create - allocate the region and lay it out, state
 * "starting" and magic 0 (kushm_region_publish() makes it visible).
 * @d: the device.
 * @procs_cap: capacity of the per-process table.
 * @sys_cap: capacity of the per-syscall table.
 * Return: 0 or a negative errno; nothing is left allocated on error.
 */
int kushm_region_create(struct kushm_dev *d, u32 procs_cap, u32 sys_cap)
{
	struct kushm_hgeom gp = {
		.capacity = procs_cap, .nslots = nr_cpu_ids,
		.value_size = sizeof(struct kushm_proc_stat),
		.data_size = sizeof(struct kushm_proc_data),
	};
	struct kushm_hgeom gs = {
		.capacity = sys_cap, .nslots = nr_cpu_ids,
		.value_size = KUSHM_SYSCALL_SLOT_SIZE,	/* struct kushm_syscall_slot */
	};
	struct kushm_hgeom gc = {
		.capacity = d->cg_cap, .nslots = nr_cpu_ids,
		.value_size = sizeof(struct kushm_cgroup_stat),
		.data_size = sizeof(struct kushm_cgroup_data),
	};
	static const char *const names[KUSHM_NSECTIONS] = {
		KUSHM_SEC_NAME_SCHEMA, KUSHM_SEC_NAME_PMU, KUSHM_SEC_NAME_MSR,
		KUSHM_SEC_NAME_CPU_TIME, KUSHM_SEC_NAME_PROCS, KUSHM_SEC_NAME_SYSCALLS,
		KUSHM_SEC_NAME_PMU_MUX, KUSHM_SEC_NAME_CGROUPS, KUSHM_SEC_NAME_CONTROL,
		KUSHM_SEC_NAME_INFO,
	};
	u64 size[KUSHM_NSECTIONS], off[KUSHM_NSECTIONS], total;
	struct kushm_section *s;
	struct kushm_header *h;
	u32 ncols, i, pstride, mstride, tstride, xstride;
	int err;

	d->ncpus = nr_cpu_ids;
	if (d->ncpus > KUSHM_MAX_CPUS)
		return -E2BIG;
	ncols = KUSHM_NCOLUMNS;
	pstride = kushm_arr_stride(KUSHM_PMU_NUM_PRESETS);
	mstride = kushm_arr_stride(KUSHM_MSR_NUM);
	tstride = kushm_arr_stride(KUSHM_NUM_CPU_TIME);
	xstride = kushm_arr_stride(KUSHM_NUM_PMU_MUX);
	size[SEC_SCHEMA] = (u64)max(ncols, 1U) * KUSHM_COLUMN_ENTRY_SIZE;
	size[SEC_PMU] = (u64)pstride * d->ncpus;
	size[SEC_MSR] = (u64)mstride * d->ncpus;
	size[SEC_CPUTIME] = (u64)tstride * d->ncpus;
	size[SEC_PROCS] = kushm_htab_size(&gp);
	size[SEC_SYSCALLS] = kushm_htab_size(&gs);
	size[SEC_CGROUPS] = kushm_htab_size(&gc);
	size[SEC_PMU_MUX] = (u64)xstride * d->ncpus;
	size[SEC_CONTROL] = KUSHM_CONTROL_SIZE;
	size[SEC_INFO] = KUSHM_INFO_SIZE;
	if (!size[SEC_PROCS] || !size[SEC_SYSCALLS] || !size[SEC_CGROUPS])
		return -EINVAL;
	total = KUSHM_HEADER_AREA_SIZE;
	for (i = 0; i < KUSHM_NSECTIONS; i++) {
		size[i] = page_round(size[i]);
		off[i] = total;
		total += size[i];
	}
	err = kushm_table_init(&d->procs, procs_cap);
	if (err)
		return err;
	err = kushm_table_init(&d->syscalls, sys_cap);
	if (err)
		goto exit_procs_table;
	err = kushm_table_init(&d->cgroups, d->cg_cap);
	if (err)
		goto exit_syscalls_table;
	d->region = vmalloc_user(total);	/* zeroed */
	if (!d->region) {
		err = -ENOMEM;
		goto exit_cgroups_table;
	}
	d->size = total;
	d->hdr = h = d->region;
	d->sec = s = (struct kushm_section *)((u8 *)d->region + KUSHM_SECTION_TABLE_OFF);

	h->abi_major = KUSHM_ABI_MAJOR;
	h->abi_minor = KUSHM_ABI_MINOR;
	h->header_size = KUSHM_HEADER_AREA_SIZE;
	h->region_size = total;
	h->page_size = PAGE_SIZE;
	h->ncpus = d->ncpus;
	h->producer_kind = KUSHM_PRODUCER_KERNEL;
	h->producer_pid = 0;
	h->created_real_ns = ktime_get_real_ns();
	h->heartbeat_ns = ktime_get_ns();
	h->heartbeat_period_ns = min_t(u64, (u64)kushm_interval_ms * NSEC_PER_MSEC,
				       (u64)KUSHM_HEARTBEAT_EVERY_US * NSEC_PER_USEC);
	h->state = KUSHM_STATE_STARTING;
	h->section_table_off = KUSHM_SECTION_TABLE_OFF;
	h->section_count = KUSHM_NSECTIONS;
	h->section_entry_size = KUSHM_SECTION_ENTRY_SIZE;
	h->column_entry_size = KUSHM_COLUMN_ENTRY_SIZE;
	h->generation = 1;
	strscpy(h->producer_name, KUSHM_PRODUCER_NAME, sizeof(h->producer_name));

	for (i = 0; i < KUSHM_NSECTIONS; i++) {
		strscpy(s[i].name, names[i], sizeof(s[i].name));
		s[i].flags = KUSHM_SEC_FLAG_PRODUCER;
		s[i].offset = off[i];
		s[i].size = size[i];
		s[i].col_first = col_first[i];
		s[i].col_count = col_count[i];
	}
	s[SEC_SCHEMA].kind = KUSHM_SEC_SCHEMA;
	s[SEC_SCHEMA].elem_size = KUSHM_COLUMN_ENTRY_SIZE;
	s[SEC_SCHEMA].count = ncols;
	memcpy((u8 *)d->region + off[SEC_SCHEMA], kushm_columns, sizeof(kushm_columns));

	s[SEC_PMU].kind = KUSHM_SEC_ATOMIC_ARR;
	s[SEC_PMU].elem_size = pstride;
	s[SEC_PMU].count = d->ncpus;
	s[SEC_PMU].aux0 = KUSHM_PMU_NUM_PRESETS;
	d->pmu = (struct kushm_arr){ (u8 *)d->region + off[SEC_PMU], pstride, d->ncpus,
				     KUSHM_PMU_NUM_PRESETS };

	s[SEC_MSR].kind = KUSHM_SEC_ATOMIC_ARR;
	s[SEC_MSR].elem_size = mstride;
	s[SEC_MSR].count = d->ncpus;
	s[SEC_MSR].aux0 = KUSHM_MSR_NUM;
	d->msr = (struct kushm_arr){ (u8 *)d->region + off[SEC_MSR], mstride, d->ncpus,
				     KUSHM_MSR_NUM };

	s[SEC_CPUTIME].kind = KUSHM_SEC_ATOMIC_ARR;
	s[SEC_CPUTIME].elem_size = tstride;
	s[SEC_CPUTIME].count = d->ncpus;
	s[SEC_CPUTIME].aux0 = KUSHM_NUM_CPU_TIME;
	d->cputime = (struct kushm_arr){ (u8 *)d->region + off[SEC_CPUTIME], tstride, d->ncpus,
					 KUSHM_NUM_CPU_TIME };

	s[SEC_PROCS].kind = KUSHM_SEC_RCU_HASH;
	err = kushm_htab_format(&d->procs.h, (u8 *)d->region + off[SEC_PROCS], size[SEC_PROCS], &gp,
				d->procs.free, d->procs.pos);
	if (err)
		goto free_region;
	s[SEC_PROCS].elem_size = d->procs.h.node_size;
	s[SEC_PROCS].count = d->procs.h.capacity;

	s[SEC_SYSCALLS].kind = KUSHM_SEC_RCU_HASH;
	err = kushm_htab_format(&d->syscalls.h, (u8 *)d->region + off[SEC_SYSCALLS],
				size[SEC_SYSCALLS], &gs, d->syscalls.free, d->syscalls.pos);
	if (err)
		goto free_region;
	s[SEC_SYSCALLS].elem_size = d->syscalls.h.node_size;
	s[SEC_SYSCALLS].count = d->syscalls.h.capacity;

	/*
	 * The module's perf events are pinned (never multiplexed): its
	 * pmu_mux rows stay without times (valid 0), which readers show as
	 * "not scaled"; the section is laid out so both producers describe
	 * the same sections.
	 */
	s[SEC_PMU_MUX].kind = KUSHM_SEC_ATOMIC_ARR;
	s[SEC_PMU_MUX].elem_size = xstride;
	s[SEC_PMU_MUX].count = d->ncpus;
	s[SEC_PMU_MUX].aux0 = KUSHM_NUM_PMU_MUX;

	s[SEC_CGROUPS].kind = KUSHM_SEC_RCU_HASH;
	err = kushm_htab_format(&d->cgroups.h, (u8 *)d->region + off[SEC_CGROUPS],
				size[SEC_CGROUPS], &gc, d->cgroups.free, d->cgroups.pos);
	if (err)
		goto free_region;
	s[SEC_CGROUPS].elem_size = d->cgroups.h.node_size;
	s[SEC_CGROUPS].count = d->cgroups.h.capacity;

	s[SEC_CONTROL].kind = KUSHM_SEC_CONTROL;
	s[SEC_CONTROL].flags = KUSHM_SEC_FLAG_USER_WRITABLE;
	d->ctl = (struct kushm_control *)((u8 *)d->region + off[SEC_CONTROL]);
	d->ctl->magic = KUSHM_CONTROL_MAGIC;
	d->ctl->version = 1;
	d->ctl_off = off[SEC_CONTROL];
	d->ctl_size = size[SEC_CONTROL];

	s[SEC_INFO].kind = KUSHM_SEC_TEXT;
	d->info = (char *)d->region + off[SEC_INFO];
	d->info_size = size[SEC_INFO];

	return 0;

free_region:
	vfree(d->region);
	d->region = NULL;
exit_cgroups_table:
	kushm_table_exit(&d->cgroups);
exit_syscalls_table:
	kushm_table_exit(&d->syscalls);
exit_procs_table:
	kushm_table_exit(&d->procs);
	return err;
}

/**
 * kushm_region_publish - store the magic last (release): a reader that
 * sees it sees the header, the section table and the schema complete.
 * @d: the device.
 */
void kushm_region_publish(struct kushm_dev *d)
{
	smp_store_release(&d->hdr->magic, KUSHM_MAGIC);	/* pairs with readers' acquire of magic */
}

/**
 * kushm_region_destroy - free the region. No mapping can exist (each pins
 * the module).
 * @d: the device.
 */
void kushm_region_destroy(struct kushm_dev *d)
{
	kushm_table_exit(&d->cgroups);
	kushm_table_exit(&d->syscalls);
	kushm_table_exit(&d->procs);
	vfree(d->region);
	d->region = NULL;
}

/**
 * kushm_info_append - append one line to the info text section so that a
 * reader sees either the old text or the new one: the new bytes go after
 * the terminating NUL first, and the old NUL is overwritten last.
 * @d: the device.
 * @fmt: printf format of the line (without the newline).
 */
void kushm_info_append(struct kushm_dev *d, const char *fmt, ...)
{
	char line[256];
	size_t len, cur;
	va_list ap;

	va_start(ap, fmt);
	len = vscnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	line[len++] = '\n';
	cur = strnlen(d->info, d->info_size);
	if (cur + len + 1 > d->info_size)
		return;
	memcpy(d->info + cur + 1, line + 1, len - 1);
	d->info[cur + len] = '\0';
	smp_wmb();	/* the new text before the byte that makes it visible */
	WRITE_ONCE(d->info[cur], line[0]);
}

/**
 * kushm_info_unavailable - append an entry saying why a column cannot be
 * read, in the info section's format (docs/region-format.md §9):
 * "unavailable<TAB>WHAT<TAB>SOURCE<TAB>KIND<TAB>ERRNO<TAB>CAUSE". Readers
 * compose the sentence "WHAT: not available on this machine, because CAUSE".
 * @d: the device.
 * @what: the column's name.
 * @source: what tried to read it, one of KUSHM_INFO_SOURCE_*.
 * @kind: how it failed, one of KUSHM_INFO_KIND_*.
 * @err: the failing call's error code (negative), or 0.
 * @fmt: printf format of the cause (no tab, no newline).
 */
void kushm_info_unavailable(struct kushm_dev *d, const char *what, const char *source,
			    const char *kind, int err, const char *fmt, ...)
{
	char cause[192];
	va_list ap;

	va_start(ap, fmt);
	vscnprintf(cause, sizeof(cause), fmt, ap);
	va_end(ap);
	kushm_info_append(d, KUSHM_INFO_UNAVAILABLE KUSHM_INFO_SEP "%s" KUSHM_INFO_SEP "%s"
			  KUSHM_INFO_SEP "%s" KUSHM_INFO_SEP "%d" KUSHM_INFO_SEP "%s",
			  what, source, kind, err < 0 ? -err : err, cause);
}
