package provider

import (
	"testing"

	"github.com/kushm/kushm/tools/cgwork"
	"github.com/kushm/kushm/tools/vmtest"
)

// TestVMCgroupsBPF runs the BPF mode's tests in the qemu guests (6.1 and
// 6.12): known work charged per cgroup, sums, move, removal, and the
// 1,000-cgroup churn.
func TestVMCgroupsBPF(t *testing.T) {
	vmtest.Require(t)
	if _, err := cgwork.Mount2(); err != nil {
		t.Fatal(err)
	}
	t.Run("charges", TestCgroupsBPF)
	t.Run("churn", TestCgroupsChurn)
}
