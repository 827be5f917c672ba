// SPDX-License-Identifier: Apache-2.0

// Package tracker is kushm's syscall-latency tracker and the Go side of the
// bpf_kushm_* helper ABI (docs/helpers.md).
//
// The BPF programs (bpf/tracker.bpf.c) run in the kernel as tp_btf
// sys_enter/sys_exit programs: each syscall's latency goes to the kushm
// module's bpf_kushm_record_latency kfunc, which keeps per-CPU integer
// Welford statistics in the region's "syscalls" table and says whether the
// sample exceeds the adaptive threshold (mean + k·σ after a warm-up, or a
// per-syscall override written by userspace in the control section). Only
// the outliers reach userspace, through a BPF ring buffer (Tracker.Read).
//
// Reading the statistics needs no BPF at all, and is the reader's:
// userside/client's Syscalls merges the per-CPU slots of the region
// exactly as the kernel does (Merge, Threshold here: same integer
// arithmetic, same results), and SetSyscallOverride / SetSyscallParams /
// SetSyscallPolicy write the user-writable control section.
//
// # Errors
//
// Errors wrap ErrNotSupported when the kernel lacks what is needed (no
// kushm module, or the module has no BTF so its kfuncs do not exist:
// KfuncsAvailable tells), ErrInvalid for an out-of-range argument, and
// ErrClosed after Close; other errors come from cilium/ebpf or package shm
// and keep their own sentinels (errors.Is).
//
// # Lifetimes
//
// A Tracker holds the loaded programs, their links and the ring buffer
// until Close, which detaches everything; Read returns ErrClosed after
// Close. Values returned (SyscallStat, Event) are copies.
package tracker
