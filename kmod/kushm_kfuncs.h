/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kushm_kfuncs.h - the BPF kfuncs of kushm (bpf_kushm_*), docs/helpers.md.
 *
 * Contract with the module core (kushm_main.c / kushm_region.c):
 *
 *   module init:  kushm_kfuncs_init()  once, after the region exists and
 *                 before anything can run BPF programs against it is moot
 *                 (kfuncs registered before attach return -ENODATA / 0).
 *                 Call kushm_kfuncs_attach(base, size) as soon as the
 *                 region's header, section table, "syscalls", "pmu",
 *                 "procs" and "control" sections are initialised.
 *   module exit:  kushm_kfuncs_detach() before the region memory is freed.
 *                 (A loaded BPF program that uses the kfuncs holds a
 *                 reference on the module, so exit only runs once none is
 *                 left; detach still waits an RCU grace period.)
 *
 * Ownership: in the kernel, kushm_kfuncs.c is the structure writer of the
 * "syscalls" table (it inserts one node per syscall nr on first use, under
 * its own lock, and never deletes), and CPU j writes only slot j of a node.
 * Nothing else in the module may insert into or write the "syscalls" table.
 * The "pmu" and "procs" sections and "control" are only read here.
 */
#ifndef _KUSHM_KFUNCS_H
#define _KUSHM_KFUNCS_H

#include <linux/types.h>

#ifdef KUSHM_HAVE_KFUNCS
/* Registers the kfunc sets (tracing, syscall programs). 0 or -errno. */
int kushm_kfuncs_init(void);
/* Validates the region's layout and starts serving it. 0 or -errno. */
int kushm_kfuncs_attach(void *base, size_t size);
/* Stops serving the region; waits for running kfuncs to finish. */
void kushm_kfuncs_detach(void);
/* True when kfuncs were registered (module BTF present). */
bool kushm_kfuncs_registered(void);
#else
static inline int kushm_kfuncs_init(void) { return 0; }
static inline int kushm_kfuncs_attach(void *base, size_t size) { return 0; }
static inline void kushm_kfuncs_detach(void) { }
static inline bool kushm_kfuncs_registered(void) { return false; }
#endif

#endif /* _KUSHM_KFUNCS_H */
