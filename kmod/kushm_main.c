// SPDX-License-Identifier: GPL-2.0
/*
 * kushm - kernel-user shared memory: a region of per-CPU PMU and MSR
 * samples, per-process statistics and per-syscall latency statistics,
 * produced in the kernel and mapped read-only by readers through
 * /dev/kushm and /sys/kernel/debug/kushm/region (docs/region-format.md).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/vmalloc.h>
#include <linux/debugfs.h>
#include <linux/miscdevice.h>
#include <linux/log2.h>
#include <linux/version.h>
#include "kushm_compat.h"
#include "kushm.h"

unsigned int kushm_interval_ms = 100;
module_param_named(interval_ms, kushm_interval_ms, uint, 0444);
MODULE_PARM_DESC(interval_ms, "sampling interval in ms (10..60000, default 100); the control section may override it");

static unsigned int procs_capacity = 1024;
module_param(procs_capacity, uint, 0444);
MODULE_PARM_DESC(procs_capacity, "processes the per-process table holds (1..65536, default 1024)");

static unsigned int cgroups_capacity = 1024;
module_param(cgroups_capacity, uint, 0444);
MODULE_PARM_DESC(cgroups_capacity, "cgroups the per-cgroup table holds, a power of two (2..65536, default 1024)");

unsigned int kushm_procs_sweep_ms = 1000;
module_param_named(procs_sweep_ms, kushm_procs_sweep_ms, uint, 0444);
MODULE_PARM_DESC(procs_sweep_ms, "period of the procs table's sweep in ms (10..60000, default 1000): rows of processes that are gone are removed, names and uids refreshed");

static unsigned int syscalls_capacity = 512;
module_param(syscalls_capacity, uint, 0444);
MODULE_PARM_DESC(syscalls_capacity, "syscalls the per-syscall table holds (1..4096, default 512)");

static char *presets = "all";
module_param(presets, charp, 0444);
MODULE_PARM_DESC(presets, "PMU presets to sample: all, none, or a comma list of names (PAPI_TOT_CYC or tot_cyc ...)");

static char *msrs = "all";
module_param(msrs, charp, 0444);
MODULE_PARM_DESC(msrs, "MSRs of the allowlist to sample: all, none, or a comma list of catalogue names (TSC, APERF ...)");

static unsigned short dev_mode = 0644;
module_param(dev_mode, ushort, 0444);
MODULE_PARM_DESC(dev_mode, "mode of /dev/kushm (default 0644: only writers may map the control section writable)");

struct kushm_dev *kushm;

/*
 * kushm_mmap - map [pgoff, pgoff + len) of the region.
 *
 * Bounds are checked without overflow (as array_map_mmap does). A mapping
 * that is, or could later be made, writable must lie inside the
 * user-writable control section: anything else asking for write access is
 * refused with EPERM, and read-only mappings of producer pages lose
 * VM_MAYWRITE so mprotect cannot add it later.
 */
static int kushm_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct kushm_dev *d = kushm;
	u64 npages = d->size >> PAGE_SHIFT;
	u64 len = vma->vm_end - vma->vm_start;
	u64 pgoff = vma->vm_pgoff;
	u64 lpages = len >> PAGE_SHIFT;
	u64 start, ctl_end;
	bool in_ctl;

	if (!len || pgoff >= npages || lpages > npages - pgoff)
		return -EINVAL;
	start = pgoff << PAGE_SHIFT;
	ctl_end = d->ctl_off + d->ctl_size;
	in_ctl = start >= d->ctl_off && start < ctl_end &&
		 lpages <= (ctl_end - start) >> PAGE_SHIFT;
	if (!in_ctl) {
		if (vma->vm_flags & VM_WRITE)
			return -EPERM;
		kushm_vm_flags_clear(vma, VM_MAYWRITE);
	}
	return remap_vmalloc_range(vma, d->region, pgoff);
}

static int kushm_open(struct inode *inode, struct file *file)
{
	return kushm ? 0 : -ENODEV;
}

/* read(2) of the region: readers pread the header to learn its size. */
static ssize_t kushm_read(struct file *file, char __user *buf, size_t count, loff_t *ppos)
{
	return simple_read_from_buffer(buf, count, ppos, kushm->region, kushm->size);
}

static const struct file_operations kushm_fops = {
	.owner = THIS_MODULE,
	.open = kushm_open,
	.read = kushm_read,
	.mmap = kushm_mmap,
	.llseek = noop_llseek,
};

/*
 * The debugfs region file is a regular file whose size readers check
 * against the region's: root truncating it (ftruncate, open with O_TRUNC)
 * would make every reader refuse the region until the module is
 * reloaded. Its attributes are the module's: every change is refused.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
static int kushm_dbg_setattr(struct mnt_idmap *idmap, struct dentry *dentry,
			     struct iattr *ia)
#else
static int kushm_dbg_setattr(struct user_namespace *ns, struct dentry *dentry,
			     struct iattr *ia)
#endif
{
	return -EPERM;
}

static const struct inode_operations kushm_dbg_iops = {
	.setattr = kushm_dbg_setattr,
};

static int __init kushm_init(void)
{
	struct kushm_dev *d;
	struct dentry *dbg;
	int err;

	if (kushm_interval_ms < 10 || kushm_interval_ms > 60000 ||
	    kushm_procs_sweep_ms < 10 || kushm_procs_sweep_ms > 60000 ||
	    !procs_capacity || procs_capacity > 65536 ||
	    !syscalls_capacity || syscalls_capacity > 4096 ||
	    cgroups_capacity < 2 || cgroups_capacity > 65536 || !is_power_of_2(cgroups_capacity)) {
		pr_err("parameter out of range (interval_ms and procs_sweep_ms 10..60000, procs_capacity 1..65536, syscalls_capacity 1..4096, cgroups_capacity a power of two 2..65536)\n");
		return -EINVAL;
	}
	d = kzalloc(sizeof(*d), GFP_KERNEL);
	if (!d)
		return -ENOMEM;
	err = kushm_parse_list(presets, &d->preset_req, false);
	if (err) {
		pr_err("presets=%s: unknown preset\n", presets);
		goto free_dev;
	}
	err = kushm_parse_list(msrs, &d->msr_req, true);
	if (err) {
		pr_err("msrs=%s: unknown or not allowlisted MSR\n", msrs);
		goto free_dev;
	}
	d->cg_cap = cgroups_capacity;
	err = kushm_region_create(d, procs_capacity, syscalls_capacity);
	if (err)
		goto free_dev;
	err = kushm_sample_init(d);
	if (err)
		goto destroy_region;
	err = kushm_cgroups_init(d);
	if (err)
		goto exit_sample;
	err = kushm_procs_init(d);
	if (err)
		goto exit_cgroups;
	kushm_region_publish(d);
	kushm = d;
	kushm_sample_start(d);

	d->misc.minor = MISC_DYNAMIC_MINOR;
	d->misc.name = "kushm";
	d->misc.fops = &kushm_fops;
	d->misc.mode = dev_mode & 0666;
	err = misc_register(&d->misc);
	if (err)
		goto stop_sample;
	d->dbg_dir = debugfs_create_dir("kushm", NULL);
	/* debugfs_create_file() would hide .mmap behind its proxy (ENODEV). */
	dbg = debugfs_create_file_unsafe("region", 0600, d->dbg_dir, NULL, &kushm_fops);
	if (!IS_ERR_OR_NULL(dbg)) {	/* readers check the size of regular files */
		i_size_write(d_inode(dbg), d->size);
		d_inode(dbg)->i_op = &kushm_dbg_iops;
	}
	/* Fault injection for the kernel tests: exits the procs table misses. */
	kushm_procs_skip_exit = false;
	debugfs_create_bool("procs_fault_skip_exit", 0600, d->dbg_dir, &kushm_procs_skip_exit);

	/*
	 * The kfuncs (kushm_kfuncs.c) serve the region to kernel eBPF; they
	 * are the kernel's writer of the "syscalls" table.
	 */
	err = kushm_kfuncs_init();
	if (err)
		goto remove_files;
	err = kushm_kfuncs_attach(d->region, d->size);
	if (err)	/* the region still serves userspace readers */
		pr_notice("kfuncs cannot serve the region (%d)\n", err);
	pr_info("region of %llu bytes, %u CPUs, /dev/kushm\n", d->size, d->ncpus);
	return 0;

remove_files:
	debugfs_remove(d->dbg_dir);
	misc_deregister(&d->misc);
stop_sample:
	kushm_sample_stop(d);
	kushm = NULL;
	kushm_procs_exit(d);
exit_cgroups:
	kushm_cgroups_exit(d);
exit_sample:
	kushm_sample_exit(d);
destroy_region:
	kushm_region_destroy(d);
free_dev:
	kfree(d);
	return err;
}

static void __exit kushm_exit(void)
{
	struct kushm_dev *d = kushm;

	/*
	 * Every open file and every mapping (which holds its file) pins the
	 * module through .owner, so no mapping outlives the region.
	 */
	kushm_kfuncs_detach();
	debugfs_remove(d->dbg_dir);
	misc_deregister(&d->misc);
	kushm_sample_stop(d);
	kushm_procs_exit(d);
	kushm_cgroups_exit(d);
	kushm = NULL;
	kushm_sample_exit(d);
	WRITE_ONCE(d->hdr->state, KUSHM_STATE_STOPPED);
	kushm_region_destroy(d);
	kfree(d);
}

module_init(kushm_init);
module_exit(kushm_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("The kushm authors");
MODULE_DESCRIPTION("kushm: kernel-user shared memory of PMU, MSR, per-process and per-syscall statistics");
MODULE_VERSION(KUSHM_VERSION);
