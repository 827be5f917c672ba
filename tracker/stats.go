// SPDX-License-Identifier: Apache-2.0

package tracker

import (
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/sysstat"
)

// Reading and writing the statistics and thresholds of a region is the
// reader's: userside/client (Client.Syscalls, SyscallParams,
// SetSyscallOverride, SetSyscallParams, SetSyscallPolicy). This package
// keeps the arithmetic the kernel side shares.

// NumSyscalls bounds the syscall numbers with statistics and overrides.
const NumSyscalls = abi.NumSyscallOverrides

// ISqrt is floor(sqrt(x)), the integer square root of docs/helpers.md.
func ISqrt(x uint64) uint64 { return sysstat.ISqrt(x) }

// Merge combines per-CPU slots in index order with Chan et al.'s formula
// in the integer arithmetic of the kernel (docs/helpers.md): the result is
// bit-identical to what bpf_kushm_table_lookup returns.
func Merge(slots []abi.SyscallStat) abi.SyscallStat { return sysstat.Merge(slots) }

// StdDev is floor(sqrt(M2/count)), the population standard deviation.
func StdDev(s abi.SyscallStat) uint64 { return sysstat.StdDev(s) }

// Threshold is the adaptive threshold of merged statistics: 0 while
// count < max(warmup, 2), else mean + kx100·σ/100 (at least 1), saturating.
func Threshold(s abi.SyscallStat, kx100, warmup uint64) uint64 {
	return sysstat.Threshold(&s, kx100, warmup)
}
