// SPDX-License-Identifier: Apache-2.0

package tracker

import (
	"errors"
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

// BatchArgs is the context of the batch recorder (bpf/probe.bpf.c);
// BatchBuf an entry of its batch map (latencies in, decisions out).
type (
	BatchArgs = probeBatchArgs
	BatchBuf  = probeBatchBuf
)

// BatchSize is the most latencies one run of the batch recorder records;
// BatchSlots the callers it serves at once (one batch map entry each).
const (
	BatchSize  = len(BatchBuf{}.Lat)
	BatchSlots = 64
)

// Batch is the loaded batch recorder: a BPF_PROG_TYPE_SYSCALL program
// that calls bpf_kushm_record_latency for up to BatchSize latencies in
// order, on the CPU the run starts on, and returns every decision.
type Batch struct {
	prog *ebpf.Program
	buf  *ebpf.Map
}

// LoadBatch loads the batch recorder; it fails when the kfuncs are missing.
func LoadBatch() (*Batch, error) {
	spec, err := loadProbe()
	if err != nil {
		return nil, fmt.Errorf("load batch recorder: %w", err)
	}
	spec.Programs["record_batch"].Flags |= bpfFSleepable
	var objs struct {
		Prog *ebpf.Program `ebpf:"record_batch"`
		Buf  *ebpf.Map     `ebpf:"batch"`
	}
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		return nil, fmt.Errorf("load batch recorder: %w", err)
	}
	return &Batch{prog: objs.Prog, buf: objs.Buf}, nil
}

// Record records lat (at most BatchSize latencies) for syscall nr through
// batch map entry slot (< BatchSlots; one per concurrent caller) and
// returns which were outliers and the CPU they were recorded on.
func (b *Batch) Record(nr, slot uint32, lat []uint64) ([]bool, uint32, error) {
	if len(lat) > BatchSize || slot >= BatchSlots {
		return nil, 0, fmt.Errorf("record batch: %d latencies into entry %d: %w", len(lat), slot, ErrInvalid)
	}
	var buf BatchBuf
	copy(buf.Lat[:], lat)
	if err := b.buf.Put(slot, &buf); err != nil {
		return nil, 0, fmt.Errorf("record batch: %w", err)
	}
	a := BatchArgs{Nr: nr, N: uint32(len(lat)), Slot: slot}
	if _, err := b.prog.Run(&ebpf.RunOptions{Context: a, ContextOut: &a}); err != nil {
		return nil, 0, fmt.Errorf("record batch: %w", err)
	}
	if a.Err != 0 {
		return nil, a.Cpu, fmt.Errorf("record batch: bpf_kushm_record_latency returned %d", a.Err)
	}
	if err := b.buf.Lookup(slot, &buf); err != nil {
		return nil, 0, fmt.Errorf("record batch: %w", err)
	}
	out := make([]bool, len(lat))
	for i := range out {
		out[i] = buf.Out[i/64]&(1<<(i%64)) != 0
	}
	return out, a.Cpu, nil
}

// Close unloads the batch recorder.
func (b *Batch) Close() error { return errors.Join(b.prog.Close(), b.buf.Close()) }
