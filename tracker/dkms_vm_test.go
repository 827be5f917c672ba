package tracker

import (
	"testing"

	"github.com/kushm/kushm/internal/modload"
	"github.com/kushm/kushm/tools/vmtest"
)

// The module as DKMS installs it where the kernel compresses its modules
// (kushm.ko.xz on Debian's 6.12; `make vmtest` builds with dkms build)
// loads through `kushm load`'s loader and registers its kfuncs. The other
// kernel tests then run on it (same module, loaded).
func TestVMKfuncsDKMSModule(t *testing.T) {
	vmtest.Require(t)
	if vmtest.Build() != "dkms" {
		t.Skipf("module built with %q, not dkms (make vmtest builds with dkms)", vmtest.Build())
	}
	path := vmtest.CompressedModulePath()
	if path == "" {
		path = vmtest.ModulePath() // DKMS did not compress (6.1)
	}
	if modload.Root("").Loaded() {
		if err := modload.Unload(); err != nil {
			t.Fatal(err)
		}
	}
	restore := pinAll()
	err := modload.Load(path, nil)
	restore()
	if err != nil {
		t.Fatalf("load the DKMS-built %s: %v", path, err)
	}
	if err := KfuncsAvailable(); err != nil {
		t.Fatalf("kfuncs of the DKMS-built module on %s (%s): %v", vmtest.Series(), vmtest.KernelRelease(), err)
	}
	t.Logf("%s (dkms build) loaded on %s, kfuncs registered", path, vmtest.KernelRelease())
}
