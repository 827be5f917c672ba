package sys

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TerminationSignals are the signals a daemon stops cleanly on.
var TerminationSignals = []os.Signal{os.Interrupt, unix.SIGTERM}

// Gettid is the calling thread's id.
func Gettid() int { return unix.Gettid() }

// CurrentCPU is the CPU the calling thread runs on (getcpu(2)), or 0 when
// the kernel does not say.
func CurrentCPU() int {
	var cpu, node uint32
	_, _, e := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), uintptr(unsafe.Pointer(&node)), 0)
	if e != 0 {
		return 0
	}
	return int(cpu)
}

// MmapAnon maps length bytes of private anonymous memory, readable and
// writable; release it with Munmap.
func MmapAnon(length int) ([]byte, error) {
	return unix.Mmap(-1, 0, length, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
}

// ProtectExec makes b read+execute and no longer writable: code the
// userspace eBPF JIT wrote while b was read+write (never both at once).
func ProtectExec(b []byte) error { return unix.Mprotect(b, unix.PROT_READ|unix.PROT_EXEC) }

// MmapAnonNear maps length bytes of private anonymous memory, readable
// and writable, at hint when that range is free, elsewhere otherwise (the
// hint is advisory); release it with MunmapPtr. The JIT places code near
// Go's text, within reach of the branch predictor's short targets.
func MmapAnonNear(hint uintptr, length int) (unsafe.Pointer, error) {
	at := *(*unsafe.Pointer)(unsafe.Pointer(&hint)) // an address, not a Go pointer
	return unix.MmapPtr(-1, 0, at, uintptr(length), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
}

// MunmapPtr unmaps what MmapAnonNear mapped.
func MunmapPtr(p unsafe.Pointer, length int) error { return unix.MunmapPtr(p, uintptr(length)) }
