// SPDX-License-Identifier: GPL-2.0
/* One BPF kfunc: scripts/kbtf/kbtf.sh check verifies the module gets BTF. */
#include <linux/bpf.h>
#include <linux/btf.h>
#include <linux/btf_ids.h>
#include <linux/module.h>
#include <linux/version.h>

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 8, 0)
#define KBTF_SET_START(n) BTF_SET8_START(n)
#define KBTF_SET_END(n) BTF_SET8_END(n)
#else
#define KBTF_SET_START(n) BTF_KFUNCS_START(n)
#define KBTF_SET_END(n) BTF_KFUNCS_END(n)
#endif
#ifndef __bpf_kfunc
#define __bpf_kfunc __used noinline
#endif

__diag_push();
__diag_ignore_all("-Wmissing-prototypes", "kfuncs are global for BTF");
__bpf_kfunc u64 kbtf_testmod_kfunc(u64 x)
{
	return x + 1;
}
__diag_pop();

KBTF_SET_START(kbtf_testmod_ids)
BTF_ID_FLAGS(func, kbtf_testmod_kfunc)
KBTF_SET_END(kbtf_testmod_ids)

static const struct btf_kfunc_id_set kbtf_testmod_set = {
	.owner = THIS_MODULE,
	.set = &kbtf_testmod_ids,
};

static int __init kbtf_testmod_init(void)
{
	return register_btf_kfunc_id_set(BPF_PROG_TYPE_TRACING, &kbtf_testmod_set);
}

static void __exit kbtf_testmod_exit(void)
{
}

module_init(kbtf_testmod_init);
module_exit(kbtf_testmod_exit);
MODULE_LICENSE("GPL");
