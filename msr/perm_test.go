//go:build linux

package msr

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// asNobody runs f on an OS thread whose effective uid is 65534 (see the
// pmu tests): CAP_DAC_OVERRIDE and CAP_SYS_RAWIO are gone for that thread.
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

func TestPermissionFailures(t *testing.T) {
	root := t.TempDir()
	os.Chmod(filepath.Dir(root), 0o755)
	os.Chmod(root, 0o755)
	setMSR(t, root, 0, 0x10, 42) // dev/cpu/0/msr, mode 0600 as the driver makes it
	zone := filepath.Join(root, "sys/class/powercap/intel-rapl:0")
	if err := os.MkdirAll(zone, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(zone, "name"), []byte("package-0\n"), 0o644)
	os.WriteFile(filepath.Join(zone, "energy_uj"), []byte("1000\n"), 0o400) // root-only since 5.10
	for _, d := range []string{"dev", "dev/cpu", "dev/cpu/0", "sys", "sys/class", "sys/class/powercap"} {
		os.Chmod(filepath.Join(root, d), 0o755)
	}
	asNobody(t, func() {
		r := Open(&Options{Root: root, Sources: []string{"dev", "powercap"}})
		defer r.Close()
		_, err := r.Read(0, TSC)
		if !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "CAP_SYS_RAWIO") {
			t.Errorf("dev as nobody: %v", err)
		}
		_, err = r.Read(0, PKG_ENERGY_STATUS)
		if !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "root only") {
			t.Errorf("powercap as nobody: %v", err)
		}
	})
}
