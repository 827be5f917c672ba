/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one place where kernel API differences between the
 * supported kernels (Debian bookworm's 6.1 and 6.12) are papered over.
 */
#ifndef _KUSHM_COMPAT_H
#define _KUSHM_COMPAT_H

#include <linux/version.h>
#include <linux/mm.h>

/* vm_flags became read-only behind accessors in 6.3. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0)
static inline void kushm_vm_flags_set(struct vm_area_struct *vma, unsigned long flags)
{
	vma->vm_flags |= flags;
}

static inline void kushm_vm_flags_clear(struct vm_area_struct *vma, unsigned long flags)
{
	vma->vm_flags &= ~flags;
}
#else
static inline void kushm_vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
	vm_flags_set(vma, flags);
}

static inline void kushm_vm_flags_clear(struct vm_area_struct *vma, vm_flags_t flags)
{
	vm_flags_clear(vma, flags);
}
#endif

/* class_create lost its owner argument in 6.4 (kushm uses a misc device). */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 4, 0)
#define kushm_class_create(name) class_create(THIS_MODULE, name)
#else
#define kushm_class_create(name) class_create(name)
#endif

#endif /* _KUSHM_COMPAT_H */
