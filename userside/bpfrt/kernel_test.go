package bpfrt

import (
	"errors"
	"testing"

	"github.com/cilium/ebpf"
)

// TestKernelSideBySide runs filter.o in the kernel and here: same result.
func TestKernelSideBySide(t *testing.T) {
	spec, err := ebpf.LoadCollectionSpec("testdata/filter.o")
	if err != nil {
		t.Fatal(err)
	}
	k, err := LoadKernel(spec)
	if err != nil {
		t.Skipf("bpf() not permitted or program refused here: %v", err)
	}
	defer k.Close()
	col, err := LoadCollectionSpec(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := filterContext()
	for _, c := range [][]byte{ctx, make([]byte, 64)} {
		kr, err := k.Run("filter10", c, 10)
		if errors.Is(err, ErrNotSupported) {
			t.Skipf("test run not supported: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		ur, err := col.Programs["filter10"].Run(c)
		if err != nil {
			t.Fatal(err)
		}
		if uint64(kr.Ret) != ur {
			t.Fatalf("kernel %d, userspace %d", kr.Ret, ur)
		}
	}
}
