// Package sys confines the raw system calls kushm's Go packages make
// (mmap, memfd, clocks, file inodes, processes, signals, module loading;
// perf_event_open in its subpackage perfsys) to one place, as
// cilium/ebpf's internal/unix does: no other non-test file imports
// golang.org/x/sys/unix or syscall (TestSyscallConfinement in the
// module root's layers_test.go fails when one does).
package sys

import (
	"io/fs"
	"unsafe" // go:linkname, Retire

	"golang.org/x/sys/unix"
)

// Protections for Mmap.
const (
	ProtRead  = unix.PROT_READ
	ProtWrite = unix.PROT_WRITE
)

// Mmap maps length bytes of fd at offset with prot, shared.
func Mmap(fd int, offset int64, length int, prot int) ([]byte, error) {
	return unix.Mmap(fd, offset, length, prot, unix.MAP_SHARED)
}

// Munmap unmaps b.
func Munmap(b []byte) error { return unix.Munmap(b) }

// MemfdCreate creates an anonymous memory file.
func MemfdCreate(name string) (int, error) {
	return unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
}

// MonotonicNs is CLOCK_MONOTONIC in nanoseconds, the clock of the
// region's heartbeat and sample timestamps (the kernel's ktime_get_ns).
// It is the runtime's clock, read through the vDSO without a system call
// (TestMonotonicIsClockMonotonic checks it against clock_gettime).
func MonotonicNs() uint64 { return uint64(nanotime()) }

//go:linkname nanotime runtime.nanotime
func nanotime() int64

// clockMonotonic is clock_gettime(CLOCK_MONOTONIC) by system call.
func clockMonotonic() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return uint64(ts.Sec)*1e9 + uint64(ts.Nsec)
}

// Pread reads len(b) bytes at off.
func Pread(fd int, b []byte, off int64) (int, error) { return unix.Pread(fd, b, off) }

// ReadNoBlock and PreadPseudo read files whose reads format kernel state
// and never wait for I/O: perf event counters (at most an interrupt to
// the event's CPU and microseconds of waiting) and pseudo files (procfs,
// sysfs). They skip the Go scheduler's system-call hand-off
// (RawSyscall): its wake-ups of the runtime's monitor thread cost a
// 100 Hz sampler more than the reads themselves (docs/benchmarks.md, "the
// daemon at 10 ms"). Never use them on a file that can block (a pipe, a
// network file system).

// ReadNoBlock reads into b from fd's position (see above).
func ReadNoBlock(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// PreadPseudo reads into b at offset off (see above).
func PreadPseudo(fd int, b []byte, off int64) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall6(unix.SYS_PREAD64, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(off), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// PageSize is the system page size.
func PageSize() int { return unix.Getpagesize() }

// Errno values callers compare against.
var (
	EACCES = unix.EACCES
	EPERM  = unix.EPERM
	ENODEV = unix.ENODEV
)

// Ftruncate sets the size of fd.
func Ftruncate(fd int, size int64) error { return unix.Ftruncate(fd, size) }

// SealSize forbids growing or shrinking a memfd, so no mapping of it can
// ever fault with SIGBUS, and forbids removing the seals.
func SealSize(fd int) error {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL)
	return err
}

// Close closes fd.
func Close(fd int) error { return unix.Close(fd) }

// Retire replaces the mapping under b (page-aligned, whole pages; b's
// capacity counts) by private anonymous zero pages at the same address,
// readable and writable: the file is no longer mapped (a module may
// unload, a file may shrink), while any pointer into b still reads valid
// memory (zeros) and a write lands in private memory, never faulting.
// Munmap(b) later releases the address range.
func Retire(b []byte) error {
	b = b[:cap(b)]
	if len(b) == 0 {
		return nil
	}
	_, err := unix.MmapPtr(-1, 0, unsafe.Pointer(unsafe.SliceData(b)), uintptr(len(b)),
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED)
	return err
}

// atFDCWD is AT_FDCWD (-100) as a system call argument.
var atFDCWD = func() uintptr { fd := unix.AT_FDCWD; return uintptr(fd) }()

// ReadPseudoFile reads the start of the procfs or sysfs file at path
// into b (open, one read, close) with raw system calls, for the reasons
// above: a sampler reading /proc/<pid>/stat of every watched process
// would otherwise wake the runtime's monitor thread for each. The open
// never blocks (O_NONBLOCK) and never follows a last symbolic link.
func ReadPseudoFile(path string, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return 0, err
	}
	fd, _, e := unix.RawSyscall6(unix.SYS_OPENAT, atFDCWD, uintptr(unsafe.Pointer(p)),
		unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY, 0, 0, 0)
	if e != 0 {
		return 0, &fs.PathError{Op: "open", Path: path, Err: e}
	}
	n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	unix.RawSyscall(unix.SYS_CLOSE, fd, 0, 0)
	if e != 0 {
		return 0, &fs.PathError{Op: "read", Path: path, Err: e}
	}
	return int(n), nil
}

// StatPseudo describes path (following links, as os.Stat does) with a
// raw system call, for the reasons above (the owner of /proc/<pid>).
func StatPseudo(path string) (FileStat, error) {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return FileStat{}, err
	}
	var st unix.Stat_t
	_, _, e := unix.RawSyscall6(unix.SYS_NEWFSTATAT, atFDCWD, uintptr(unsafe.Pointer(p)),
		uintptr(unsafe.Pointer(&st)), 0, 0, 0)
	if e != 0 {
		return FileStat{}, &fs.PathError{Op: "stat", Path: path, Err: e}
	}
	return statOf(&st), nil
}
