// SPDX-License-Identifier: Apache-2.0

package tracker

import "github.com/kushm/kushm/internal/sysstat"

// SyscallName is the x86_64 name of syscall nr, or "sys_<nr>".
func SyscallName(nr uint32) string { return sysstat.SyscallName(nr) }

// SyscallNumber is the inverse of SyscallName.
func SyscallNumber(name string) (uint32, bool) { return sysstat.SyscallNumber(name) }
