package sys

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Alarm is a one-shot CLOCK_MONOTONIC alarm (a timerfd) that a goroutine
// waits on through the Go netpoller: what a 100 Hz sampler sleeps on
// instead of a Go timer.
//
// Why: while any Go timer is pending, the runtime's monitor thread
// (sysmon) sleeps only until that timer's deadline, so a 10 ms ticker
// wakes two threads every tick, and a blocking system call made through
// the scheduler (syscall.Syscall) wakes sysmon again and has it poll at
// 20 µs. A goroutine parked on a timerfd in the netpoller leaves no timer
// pending: one thread wakes per tick (epoll returns), and the arming and
// the reading of the timerfd are raw system calls that never block.
// Measured on the 2-vCPU KVM guest (docs/benchmarks.md, "the daemon at
// 10 ms", third pass): a program doing nothing but waiting 10 ms at a
// time costs about half as much CPU as with a time.Ticker.
//
// Set and Wait are for one goroutine; Close may be called from any
// goroutine, also while another is in Wait, which then returns ErrClosed.
type Alarm struct {
	f  *os.File
	rc syscall.RawConn
	// Set's and Wait's work, made once so that neither allocates: the
	// functions RawConn runs, their argument and their result.
	set     func(fd uintptr)
	read    func(fd uintptr) bool
	its     unix.ItimerSpec
	buf     [8]byte // the expiration count
	err     error
	pending uint64 // the next expiry of a periodic setting (0: one-shot)
	period  uint64
}

// ErrClosed is what Wait returns once the alarm is closed.
var ErrClosed = errors.New("alarm closed")

// NewAlarm creates an alarm, disarmed.
func NewAlarm() (*Alarm, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "timerfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("timerfd: %w", err)
	}
	a := &Alarm{f: f, rc: rc}
	a.set = func(fd uintptr) {
		a.err = nil
		_, _, e := unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, fd, unix.TFD_TIMER_ABSTIME,
			uintptr(unsafe.Pointer(&a.its)), 0, 0, 0)
		if e != 0 {
			a.err = fmt.Errorf("timerfd_settime: %w", e)
		}
	}
	a.read = func(fd uintptr) bool {
		a.err = nil
		_, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&a.buf[0])), uintptr(len(a.buf)))
		switch e {
		case unix.EAGAIN:
			return false // not yet: park in the netpoller
		case 0:
		default:
			a.err = fmt.Errorf("reading timerfd: %w", e)
		}
		return true
	}
	return a, nil
}

// Set arms the alarm to fire once at deadline, in CLOCK_MONOTONIC
// nanoseconds (MonotonicNs); a deadline already past fires at once. It
// replaces any earlier setting.
func (a *Alarm) Set(deadline uint64) error { return a.SetPeriodic(deadline, 0) }

// SetPeriodic arms the alarm to fire at first and then every period
// nanoseconds (period 0: once). It replaces any earlier setting.
func (a *Alarm) SetPeriodic(first, period uint64) error {
	if first == 0 {
		first = 1 // 0 would disarm
	}
	a.its = unix.ItimerSpec{Value: unix.NsecToTimespec(int64(first)), Interval: unix.NsecToTimespec(int64(period))}
	if err := a.rc.Control(a.set); err != nil {
		return ErrClosed
	}
	a.pending, a.period = 0, period
	if period > 0 && a.err == nil {
		a.pending = first
	}
	return a.err
}

// Pending is the next expiry of a periodic setting, or 0 (one-shot):
// a caller that wants to wake at Pending with the same period need not
// set the alarm again.
func (a *Alarm) Pending() (at, period uint64) { return a.pending, a.period }

// Wait blocks until the alarm fires (at once if it fired since the last
// Wait) or the alarm is closed (ErrClosed).
func (a *Alarm) Wait() error {
	if err := a.rc.Read(a.read); err != nil {
		return ErrClosed
	}
	if a.err == nil && a.pending != 0 {
		// The read consumed n expirations (more than one when the
		// caller was late); the next is n periods after the first.
		n := *(*uint64)(unsafe.Pointer(&a.buf[0]))
		a.pending += max(n, 1) * a.period
	}
	return a.err
}

// Close releases the alarm; a Wait in progress returns ErrClosed.
func (a *Alarm) Close() error {
	if err := a.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil
}
