//go:build linux

// Package perfsys is the one place where kushm talks to perf_event_open(2)
// and pread(2) directly, through golang.org/x/sys/unix.
//
// It covers what github.com/hodgesds/perf-utils does not: errno-preserving
// errors (perf-utils formats the errno with %q, so errors.Is cannot see
// it), event groups with PERF_FORMAT_GROUP read in one read(2), and
// cgroup targets. Values are returned raw; scaling for multiplexing is
// the caller's business (see Scale).
package perfsys

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/kushm/kushm/internal/sys"
)

// Perf event types (include/uapi/linux/perf_event.h).
const (
	TypeHardware   uint32 = unix.PERF_TYPE_HARDWARE
	TypeSoftware   uint32 = unix.PERF_TYPE_SOFTWARE
	TypeTracepoint uint32 = unix.PERF_TYPE_TRACEPOINT
	TypeHWCache    uint32 = unix.PERF_TYPE_HW_CACHE
	TypeRaw        uint32 = unix.PERF_TYPE_RAW
)

// SWCgroupSwitches is the software event PERF_COUNT_SW_CGROUP_SWITCHES
// (Linux 5.13): it counts, on a CPU, the context switches whose outgoing
// and incoming tasks are in different perf_event cgroups (the cgroup v2
// one where the perf_event controller is not bound to a v1 hierarchy).
// x/sys/unix does not name it.
const SWCgroupSwitches uint64 = 11

// Attr is the subset of struct perf_event_attr kushm uses for counting.
type Attr struct {
	Type          uint32
	Config        uint64
	Config1       uint64
	Config2       uint64
	ExcludeKernel bool
	ExcludeHV     bool
	Inherit       bool
	// SamplePeriod > 0 makes the event overflow every SamplePeriod
	// counts: what a BPF program attached with AttachBPF runs on.
	SamplePeriod uint64
}

// Target says what an event counts: a task (PID >= 0, or 0 for the caller),
// a CPU (PID == -1, CPU >= 0), or a cgroup on a CPU (CgroupFD >= 0, CPU >= 0).
type Target struct {
	PID      int
	CPU      int
	CgroupFD int
}

const readFormat = unix.PERF_FORMAT_TOTAL_TIME_ENABLED | unix.PERF_FORMAT_TOTAL_TIME_RUNNING

func (a *Attr) unix(group bool, leader bool) *unix.PerfEventAttr {
	ua := &unix.PerfEventAttr{
		Type:        a.Type,
		Size:        uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
		Config:      a.Config,
		Ext1:        a.Config1,
		Ext2:        a.Config2,
		Read_format: readFormat,
		Sample:      a.SamplePeriod,
	}
	if group {
		ua.Read_format |= unix.PERF_FORMAT_GROUP
	}
	if leader {
		// Only the leader starts disabled; members follow it.
		ua.Bits |= unix.PerfBitDisabled
	}
	if a.ExcludeKernel {
		ua.Bits |= unix.PerfBitExcludeKernel
	}
	if a.ExcludeHV {
		ua.Bits |= unix.PerfBitExcludeHv
	}
	if a.Inherit {
		ua.Bits |= unix.PerfBitInherit
	}
	return ua
}

// OpenError is returned by Open. It keeps the errno for errors.Is.
type OpenError struct {
	Attr  Attr
	Errno unix.Errno
}

func (e *OpenError) Error() string {
	return fmt.Sprintf("perf_event_open type %d config %#x: %s (%s)", e.Attr.Type, e.Attr.Config, e.Errno.Error(), ErrnoName(e.Errno))
}

func (e *OpenError) Unwrap() error { return e.Errno }

// ErrnoName returns the symbolic name of the errnos perf_event_open returns.
func ErrnoName(e unix.Errno) string {
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return fmt.Sprintf("errno %d", int(e))
}

// Open opens one counting event. groupFD is -1 for a standalone event or
// a group leader. When group is true, reads of the leader return all
// members in one read(2).
func Open(a Attr, t Target, groupFD int, group bool) (int, error) {
	pid := t.PID
	flags := unix.PERF_FLAG_FD_CLOEXEC
	if t.CgroupFD >= 0 {
		pid = t.CgroupFD
		flags |= unix.PERF_FLAG_PID_CGROUP
	}
	leader := groupFD < 0
	fd, err := unix.PerfEventOpen(a.unix(group, leader), pid, t.CPU, groupFD, flags)
	if err != nil {
		var errno unix.Errno
		if errors.As(err, &errno) {
			return -1, &OpenError{Attr: a, Errno: errno}
		}
		return -1, err
	}
	return fd, nil
}

// Enable enables the event (and with group, all members).
func Enable(fd int, group bool) error {
	return ioctl(fd, unix.PERF_EVENT_IOC_ENABLE, group)
}

// Disable disables the event (and with group, all members).
func Disable(fd int, group bool) error {
	return ioctl(fd, unix.PERF_EVENT_IOC_DISABLE, group)
}

// Reset zeroes the event count (and with group, all members).
func Reset(fd int, group bool) error {
	return ioctl(fd, unix.PERF_EVENT_IOC_RESET, group)
}

func ioctl(fd int, req uint, group bool) error {
	arg := 0
	if group {
		arg = unix.PERF_IOC_FLAG_GROUP
	}
	return unix.IoctlSetInt(fd, req, arg)
}

// AttachBPF runs BPF program progFD (of type perf_event) at each of the
// event's overflows (Attr.SamplePeriod); it stays attached until fd is
// closed.
func AttachBPF(fd, progFD int) error {
	if err := unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_SET_BPF, progFD); err != nil {
		return fmt.Errorf("attach BPF program to perf event: %w", err)
	}
	return nil
}

// Close closes fd.
func Close(fd int) error { return unix.Close(fd) }

// Count is one raw reading: the value and the times the event was enabled
// and actually running on a counter (they differ when multiplexed).
type Count struct {
	Value   uint64
	Enabled uint64
	Running uint64
}

// ReadOne reads a standalone event into c using buf (at least 24 bytes).
func ReadOne(fd int, buf []byte, c *Count) error {
	n, err := rawRead(fd, buf[:24])
	if err != nil {
		return err
	}
	if n != 24 {
		return fmt.Errorf("short perf read: %d bytes", n)
	}
	c.Value = binary.NativeEndian.Uint64(buf[0:])
	c.Enabled = binary.NativeEndian.Uint64(buf[8:])
	c.Running = binary.NativeEndian.Uint64(buf[16:])
	return nil
}

// GroupBufSize is the read buffer size for a group of n events.
func GroupBufSize(n int) int { return 8 * (3 + n) }

// ReadGroup reads a group leader into cs (len(cs) == group size) using buf
// (GroupBufSize(len(cs)) bytes). All members share Enabled and Running.
func ReadGroup(fd int, buf []byte, cs []Count) error {
	n, err := rawRead(fd, buf)
	if err != nil {
		return err
	}
	return ParseGroup(buf[:n], cs)
}

// rawRead reads a perf event without the scheduler's system-call
// hand-off (sys.ReadNoBlock says why). An empty buf is a caller's bug.
func rawRead(fd int, buf []byte) (int, error) {
	if len(buf) == 0 {
		return 0, fmt.Errorf("perf read: no buffer")
	}
	return sys.ReadNoBlock(fd, buf)
}

// ParseGroup decodes a PERF_FORMAT_GROUP|TOTAL_TIME_ENABLED|TOTAL_TIME_RUNNING
// read: { u64 nr; u64 time_enabled; u64 time_running; u64 value[nr]; }.
func ParseGroup(b []byte, cs []Count) error {
	if len(b) < 24 {
		return fmt.Errorf("short perf group read: %d bytes", len(b))
	}
	nr := binary.NativeEndian.Uint64(b[0:])
	if nr != uint64(len(cs)) || uint64(len(b)) < 24+8*nr {
		return fmt.Errorf("perf group read: %d members in %d bytes, want %d", nr, len(b), len(cs))
	}
	en := binary.NativeEndian.Uint64(b[8:])
	run := binary.NativeEndian.Uint64(b[16:])
	for i := range cs {
		cs[i] = Count{Value: binary.NativeEndian.Uint64(b[24+8*i:]), Enabled: en, Running: run}
	}
	return nil
}

// OpenCgroup opens a cgroup directory for use as Target.CgroupFD.
func OpenCgroup(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}

// Pread reads len(buf) bytes at off from fd.
func Pread(fd int, buf []byte, off int64) (int, error) {
	return unix.Pread(fd, buf, off)
}

// Errno constants callers classify, re-exported so that x/sys/unix stays here.
const (
	ENOENT     = unix.ENOENT
	ENODEV     = unix.ENODEV
	EOPNOTSUPP = unix.EOPNOTSUPP
	EACCES     = unix.EACCES
	EPERM      = unix.EPERM
	EINVAL     = unix.EINVAL
	EMFILE     = unix.EMFILE
	ESRCH      = unix.ESRCH
	EBADF      = unix.EBADF
	EIO        = unix.EIO
	E2BIG      = unix.E2BIG
	EBUSY      = unix.EBUSY
	ENXIO      = unix.ENXIO
)

// Geteuid is unix.Geteuid.
func Geteuid() int { return unix.Geteuid() }

// PinThread locks the calling goroutine to its OS thread and binds that
// thread to cpu. The returned function restores the thread's previous
// affinity and unlocks it (perf-utils' LockThread leaves the thread
// pinned for whichever goroutine runs on it next).
func PinThread(cpu int) (restore func(), err error) {
	runtime.LockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("pin to cpu %d: %w", cpu, err)
	}
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("pin to cpu %d: %w", cpu, err)
	}
	return func() {
		unix.SchedSetaffinity(0, &old)
		runtime.UnlockOSThread()
	}, nil
}
