// SPDX-License-Identifier: Apache-2.0

package tracker

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// ProbeArgs is the context of the kfunc probe (bpf/probe.bpf.c): inputs,
// then the return value of every bpf_kushm_* call made with them.
type ProbeArgs = probeProbeArgs

// bpfFSleepable is BPF_F_SLEEPABLE: syscall programs must be sleepable.
const bpfFSleepable = 1 << 4

// Probe is the loaded kfunc probe, a BPF_PROG_TYPE_SYSCALL program run
// with BPF_PROG_TEST_RUN.
type Probe struct{ prog *ebpf.Program }

// LoadProbe loads the kfunc probe; it fails when the kfuncs are missing.
func LoadProbe() (*Probe, error) {
	spec, err := loadProbe()
	if err != nil {
		return nil, fmt.Errorf("load kfunc probe: %w", err)
	}
	ps := spec.Programs["kfunc_probe"]
	ps.Flags |= bpfFSleepable
	prog, err := ebpf.NewProgram(ps)
	if err != nil {
		return nil, fmt.Errorf("load kfunc probe: %w", err)
	}
	return &Probe{prog: prog}, nil
}

// Run calls every kfunc with a's inputs and fills a's outputs.
func (p *Probe) Run(a *ProbeArgs) error {
	if _, err := p.prog.Run(&ebpf.RunOptions{Context: *a, ContextOut: a}); err != nil {
		return fmt.Errorf("run kfunc probe: %w", err)
	}
	return nil
}

// Close unloads the probe.
func (p *Probe) Close() error { return p.prog.Close() }
