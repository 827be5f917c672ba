/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kushm_kfuncs.h - the BPF kfuncs of kushm (bpf_kushm_*), docs/helpers.md.
 *
 * Contract with the module core (kushm_main.c):
 *   init:  kushm_kfuncs_init() registers the kfunc sets (tracing and
 *          syscall programs); then kushm_kfuncs_attach(region, size) once
 *          the region and the global `kushm` device are set up.
 *   exit:  kushm_kfuncs_detach() first: kfuncs return -ENODATA/0 from then
 *          on; it waits an RCU grace period for running kfuncs to finish.
 * In the kernel, kushm_kfuncs.c is the only writer of the "syscalls"
 * table's slots (node inserts go through kushm_table_get, under the table's
 * lock); CPU j writes only slot j.
 */
#ifndef _KUSHM_KFUNCS_H
#define _KUSHM_KFUNCS_H

#include <linux/types.h>

#ifdef KUSHM_HAVE_KFUNCS
int kushm_kfuncs_init(void);
int kushm_kfuncs_attach(void *region, u64 size);
void kushm_kfuncs_detach(void);
/* True when the kfuncs exist (module BTF present at registration). */
bool kushm_kfuncs_registered(void);
#else
static inline int kushm_kfuncs_init(void) { return 0; }
static inline int kushm_kfuncs_attach(void *region, u64 size) { return 0; }
static inline void kushm_kfuncs_detach(void) { }
static inline bool kushm_kfuncs_registered(void) { return false; }
#endif

#endif /* _KUSHM_KFUNCS_H */
