//go:build linux

package bpfrt

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// monoBase is CLOCK_MONOTONIC when the package was initialised.
var monoBase = func() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return uint64(ts.Nano())
}()

func currentCPU() int {
	var cpu, node uint32
	_, _, e := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), uintptr(unsafe.Pointer(&node)), 0)
	if e != 0 {
		return 0
	}
	return int(cpu)
}

func gettid() int { return unix.Gettid() }
