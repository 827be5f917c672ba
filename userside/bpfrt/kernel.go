package bpfrt

import (
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
)

// KernelResult is one program run in the kernel through BPF_PROG_TEST_RUN.
type KernelResult struct {
	Ret uint32
	// NsPerRun is the time per run. For program types whose test run
	// repeats in the kernel (socket filter, XDP, tc) it is the kernel's
	// own measurement; for syscall, raw_tp and other context-only types,
	// which do not repeat, it is the wall time of one bpf() call per run,
	// so it includes the system call.
	NsPerRun float64
	// InKernelTiming reports which of the two NsPerRun is.
	InKernelTiming bool
}

// KernelCollection is a BPF object loaded into the kernel.
type KernelCollection struct {
	col *ebpf.Collection
}

// LoadKernel loads spec into the kernel (bpf(), needs CAP_BPF or root).
// Errors wrap ErrNotSupported when the kernel refuses it, e.g. because a
// kfunc is missing (the kushm module is not loaded).
func LoadKernel(spec *ebpf.CollectionSpec) (*KernelCollection, error) {
	col, err := ebpf.NewCollection(spec.Copy())
	if err != nil {
		return nil, fmt.Errorf("load into the kernel: %w: %w", ErrNotSupported, err)
	}
	return &KernelCollection{col: col}, nil
}

// Close unloads the programs and maps.
func (k *KernelCollection) Close() { k.col.Close() }

// Run runs program name repeat times on ctx.
func (k *KernelCollection) Run(name string, ctx []byte, repeat int) (KernelResult, error) {
	p := k.col.Programs[name]
	if p == nil {
		return KernelResult{}, fmt.Errorf("kernel run: no program %q", name)
	}
	if repeat < 1 {
		repeat = 1
	}
	switch p.Type() {
	case ebpf.SocketFilter, ebpf.XDP, ebpf.SchedCLS, ebpf.SchedACT:
		in := ctx
		if len(in) < 14 {
			in = append(make([]byte, 0, 14), ctx...)
			in = in[:14] //kushm:offsets-ok an Ethernet header, not region bytes
		}
		ret, d, err := p.Benchmark(in, repeat, nil)
		if err != nil {
			return KernelResult{}, fmt.Errorf("kernel run %s: %w", name, err)
		}
		return KernelResult{Ret: ret, NsPerRun: float64(d.Nanoseconds()), InKernelTiming: true}, nil
	}
	opts := &ebpf.RunOptions{Context: ctx}
	ret, err := p.Run(opts)
	if err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) {
			return KernelResult{}, fmt.Errorf("kernel run %s: %w", name, ErrNotSupported)
		}
		return KernelResult{}, fmt.Errorf("kernel run %s: %w", name, err)
	}
	start := time.Now()
	for i := 1; i < repeat; i++ {
		if _, err := p.Run(opts); err != nil {
			return KernelResult{}, fmt.Errorf("kernel run %s: %w", name, err)
		}
	}
	ns := 0.0
	if repeat > 1 {
		ns = float64(time.Since(start).Nanoseconds()) / float64(repeat-1)
	}
	return KernelResult{Ret: ret, NsPerRun: ns}, nil
}
