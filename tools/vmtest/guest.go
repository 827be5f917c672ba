package vmtest

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// Environment variables /init sets inside the guest.
const (
	// EnvGuest is "1" inside the qemu guest.
	EnvGuest = "KUSHM_VMTEST"
	// EnvModule is the path of the kushm.ko built for the guest's kernel.
	EnvModule = "KUSHM_KMOD"
	// EnvSeries is the kernel series being tested ("6.1", "6.12", "6.12-rt").
	EnvSeries = "KUSHM_VMTEST_SERIES"
	// EnvBuild is how the module was built: "make" or "dkms".
	EnvBuild = "KUSHM_VMTEST_BUILD"
)

// SkipReason is the message a kernel test skips with outside the guest.
const SkipReason = "kernel test: runs only inside the qemu guest with the kushm module (run `make vmtest`)"

// InGuest reports whether this process runs inside the vmtest guest.
func InGuest() bool { return os.Getenv(EnvGuest) == "1" }

// Require skips t unless it runs inside the vmtest guest.
func Require(t testing.TB) {
	t.Helper()
	if !InGuest() {
		t.Skip(SkipReason)
	}
}

// ModulePath is the path of kushm.ko inside the guest ("" outside).
func ModulePath() string { return os.Getenv(EnvModule) }

// ForeignModulePath is a kushm.ko built for another kernel, inside the
// guest ("" when the harness had none): loading it must fail.
func ForeignModulePath() string {
	const p = "/lib/kushm/foreign.ko"
	if _, err := os.Stat(p); err != nil || !InGuest() {
		return ""
	}
	return p
}

// Build is how the guest's module was built: "make" or "dkms" ("" outside).
func Build() string { return os.Getenv(EnvBuild) }

// CompressedModulePath is the module as DKMS installs it on a kernel that
// compresses its modules (kushm.ko.xz), inside the guest; "" when the
// module was not built by DKMS or not compressed.
func CompressedModulePath() string {
	for _, p := range []string{"/lib/kushm/kushm.ko.xz", "/lib/kushm/kushm.ko.zst"} {
		if _, err := os.Stat(p); err == nil && InGuest() {
			return p
		}
	}
	return ""
}

// Series is the kernel series under test inside the guest ("" outside).
func Series() string { return os.Getenv(EnvSeries) }

// KernelRelease returns `uname -r` of the running kernel.
func KernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// CPUHotplug returns a function that takes cpu offline (false) or back
// online (true) in the guest; never on a host (it requires the guest,
// as Require). It skips t where cpu cannot go offline, and t's cleanup
// brings cpu back online.
func CPUHotplug(t testing.TB, cpu int) func(online bool) {
	t.Helper()
	Require(t)
	path := fmt.Sprintf("/sys/devices/system/cpu/cpu%d/online", cpu)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("CPU %d cannot go offline here: %v", cpu, err)
	}
	t.Cleanup(func() { os.WriteFile(path, []byte("1"), 0) })
	return func(online bool) {
		t.Helper()
		v := "0"
		if online {
			v = "1"
		}
		if err := os.WriteFile(path, []byte(v), 0); err != nil {
			t.Fatalf("write %s to %s: %v", v, path, err)
		}
	}
}
