//go:build linux

package pmu

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// asNobody runs f on an OS thread whose effective uid is 65534: the
// effective capabilities are dropped for that thread only (Linux
// credentials are per thread; the raw syscall bypasses Go's all-threads
// setuid). The thread is never handed back to the scheduler.
func asNobody(t *testing.T, f func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch the effective uid")
	}
	done := make(chan bool)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		defer close(done)
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, ^uintptr(0), 65534, ^uintptr(0)); e != 0 {
			t.Errorf("setresuid: %v", e)
			return
		}
		f()
	}()
	<-done
}

func TestPermissionDeniedForReal(t *testing.T) {
	sys := LoadSystem("/")
	if !sys.ParanoidKnown || sys.Paranoid < 1 {
		t.Skipf("perf_event_paranoid is %d: unprivileged per-CPU counting is allowed", sys.Paranoid)
	}
	asNobody(t, func() {
		unpriv := LoadSystem("/")
		if unpriv.Privileged {
			t.Errorf("thread still privileged after dropping the euid")
		}
		_, err := OpenCPU(0, []PresetID{SW_TASK_CLOCK}, nil)
		if !errors.Is(err, ErrPermission) || !errors.Is(err, ErrNotAvailable) {
			t.Errorf("per-CPU counting as nobody: %v, want ErrPermission", err)
		} else if !strings.Contains(err.Error(), "not available on this machine, because perf_event_paranoid is") ||
			!strings.Contains(err.Error(), "CAP_PERFMON (EACCES)") {
			t.Errorf("message %q", err)
		}
		if sys.Paranoid >= 2 {
			a := Probe(nil).Presets[SW_PAGE_FAULTS]
			if a.Available || !errors.Is(a.Err, ErrPermission) {
				t.Errorf("kernel+user counting as nobody with paranoid %d: %v", sys.Paranoid, a)
			}
			a = Probe(&ProbeOptions{ExcludeKernel: true}).Presets[SW_PAGE_FAULTS]
			if sys.Paranoid == 2 && !a.Available {
				t.Errorf("user-space counting as nobody with paranoid 2: %v", a.Err)
			}
		}
	})
}
