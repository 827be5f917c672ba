// Package selftest is the harness's own check: its only kernel test logs
// a kernel WARNING, and the run must fail because of it
// (make vmtest-selftest).
package selftest

import (
	"os"
	"testing"

	"github.com/kushm/kushm/tools/vmtest"
)

func TestVMSelftestWarning(t *testing.T) {
	vmtest.Require(t)
	// What a WARN_ON() prints, written to the kernel log from userspace.
	if err := os.WriteFile("/dev/kmsg", []byte("<4>WARNING: CPU: 0 PID: 1 at kushm/vmtest/selftest.c:1 selftest+0x0/0x0\n"), 0); err != nil {
		t.Fatal(err)
	}
}

// TestVMSelftestAtomic logs what PREEMPT_RT and lockdep print about
// atomic context and lock order: each must fail the run like a WARNING.
func TestVMSelftestAtomic(t *testing.T) {
	vmtest.Require(t)
	for _, l := range []string{
		"<3>BUG: sleeping function called from invalid context at kushm/vmtest/selftest.c:2\n",
		"<3>BUG: scheduling while atomic: kushm-selftest/1/0x00000002\n",
		"<4>WARNING: possible circular locking dependency detected in kushm-selftest\n",
	} {
		if err := os.WriteFile("/dev/kmsg", []byte(l), 0); err != nil {
			t.Fatal(err)
		}
	}
}

// TestVMHotplugBare takes cpu1 offline and back without the module (a
// probe of the kernel under qemu, run by hand).
func TestVMHotplugBare(t *testing.T) {
	vmtest.Require(t)
	for i := 0; i < 5; i++ {
		for _, v := range []string{"0", "1"} {
			if err := os.WriteFile("/sys/devices/system/cpu/cpu1/online", []byte(v), 0); err != nil {
				t.Fatal(err)
			}
			t.Logf("cycle %d: online=%s", i, v)
		}
	}
}
