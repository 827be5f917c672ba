package bpfrt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/kushm/kushm/internal/sysstat"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
)

// numPresets is the number of pmu presets (ids 0..14); preset ids at or
// above it are invalid (docs/helpers.md).
const numPresets = abi.ProcCounterRuntime

const (
	procStatSize    = abi.ProcCounters * 8 // struct kushm_proc_stat
	syscallStatSize = 64                   // struct kushm_syscall_stat
)

// RegionKushm implements Kushm over a mapped kushm region with the
// semantics of docs/helpers.md, as the kernel module's kfuncs do: counters
// from the "pmu" section, tables from "procs" and "syscalls" (syscall
// slots merged with the integer Chan formula), thresholds from "syscalls"
// and "control".
//
// RecordLatency updates the region's "syscalls" slots when the region is
// one this process produces (SetSyscallWriter); otherwise it updates a
// private accumulator, merged as one more slot into the statistics
// SyscallThreshold and RecordLatency use (TableLookup shows the region's
// own statistics only). It is safe for concurrent use.
type RegionKushm struct {
	ncpus    uint32
	pmu      *atomicarr.Array
	procs    *rcuhash.Table
	syscalls *rcuhash.Table
	control  []byte

	mu      sync.Mutex
	writer  *rcuhash.Table // region syscalls table this process writes, or nil
	private map[uint32]*sysstat.Slot
}

// NewRegionKushm builds the kfunc backend over r. Sections r lacks make
// the corresponding kfuncs return -ENODATA.
func NewRegionKushm(r *shm.Region) (*RegionKushm, error) {
	k := &RegionKushm{ncpus: r.Header().NCPUs, private: map[uint32]*sysstat.Slot{}}
	var err error
	if k.pmu, err = atomicarr.Open(r, abi.SecNamePMU); err != nil && !errors.Is(err, shm.ErrNoSection) {
		return nil, fmt.Errorf("kushm helpers: %w", err)
	}
	if k.procs, err = rcuhash.Open(r, abi.SecNameProcs); err != nil && !errors.Is(err, shm.ErrNoSection) {
		return nil, fmt.Errorf("kushm helpers: %w", err)
	}
	if k.syscalls, err = rcuhash.Open(r, abi.SecNameSyscalls); err != nil && !errors.Is(err, shm.ErrNoSection) {
		return nil, fmt.Errorf("kushm helpers: %w", err)
	}
	if k.syscalls != nil && k.syscalls.ValueSize() < syscallStatSize {
		return nil, fmt.Errorf("kushm helpers: syscalls values of %d bytes: %w", k.syscalls.ValueSize(), shm.ErrCorrupt)
	}
	if s, err := r.Section(abi.SecNameControl); err == nil && !s.Missing {
		if b, err := r.Bytes(s); err == nil && len(b) >= abi.ControlSize {
			k.control = b
		}
	}
	return k, nil
}

// SetSyscallWriter makes RecordLatency update the region itself: t is the
// "syscalls" table of a region this process produces, opened with
// rcuhash.OpenWriter (this RegionKushm becomes its only writer). Samples
// go to slot CPU (or slot 0 of a single-slot table).
func (k *RegionKushm) SetSyscallWriter(t *rcuhash.Table) {
	k.mu.Lock()
	k.writer = t
	k.mu.Unlock()
}

func (k *RegionKushm) ReadCounter(cpu, preset uint32) (uint64, error) {
	if preset >= numPresets {
		return 0, ErrInvalid
	}
	if k.pmu == nil {
		return 0, ErrNoData
	}
	if cpu >= k.ncpus || int(cpu) >= k.pmu.Rows() {
		return 0, ErrInvalid
	}
	if int(preset) >= k.pmu.Slots() {
		return 0, ErrNoData
	}
	var s atomicarr.Snapshot
	if err := k.pmu.Snapshot(int(cpu), &s); err != nil {
		return 0, ErrRetry
	}
	if !s.Has(int(preset)) {
		return 0, ErrNoData
	}
	return s.Vals[preset], nil
}

func tableErr(err error) error {
	switch {
	case errors.Is(err, shm.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, shm.ErrRetry):
		return ErrRetry
	case errors.Is(err, shm.ErrCorrupt):
		return ErrCorrupt
	case errors.Is(err, rcuhash.ErrShortBuffer):
		return ErrShortBuf
	}
	return ErrInvalid
}

func (k *RegionKushm) TableLookup(table uint32, key uint64, buf []byte) (int, error) {
	var need int
	switch table {
	case abi.TableProcs:
		need = procStatSize
	case abi.TableSyscalls:
		need = syscallStatSize
	default:
		return 0, ErrInvalid
	}
	if len(buf) < need {
		return 0, ErrShortBuf
	}
	if table == abi.TableSyscalls {
		if k.syscalls == nil {
			return 0, ErrNoData
		}
		m, err := k.regionStat(key)
		if err != nil {
			return 0, err
		}
		putSyscallStat(buf, &m.Stat)
		return need, nil
	}
	if k.procs == nil {
		return 0, ErrNoData
	}
	dst := buf[:need]
	if vs := k.procs.ValueSize(); vs != need {
		dst = make([]byte, max(vs, need))
	}
	if err := k.procs.Lookup(key, dst); err != nil {
		return 0, tableErr(err)
	}
	copy(buf[:need], dst)
	return need, nil
}

var slotBufs sync.Pool

// regionStat is the merged slots of syscall nr in the region (a 64-byte
// slot of ABI ≤ 1.2 has no histogram).
func (k *RegionKushm) regionStat(nr uint64) (sysstat.Hist, error) {
	t := k.syscalls
	vs := t.ValueSize()
	n := t.NSlots() * vs
	bp, _ := slotBufs.Get().(*[]byte)
	if bp == nil || cap(*bp) < n {
		b := make([]byte, n)
		bp = &b
	}
	raw := (*bp)[:n]
	defer slotBufs.Put(bp)
	var acc sysstat.Hist
	if err := t.Read(nr, nil, raw); err != nil {
		return acc, tableErr(err)
	}
	var s sysstat.Slot
	for j := 0; j < t.NSlots(); j++ {
		decodeSlot(raw[j*vs:(j+1)*vs], &s)
		acc.MergeSlot(&s)
	}
	return acc, nil
}

// decodeSlot reads a syscalls slot of either size.
func decodeSlot(b []byte, s *sysstat.Slot) {
	if len(b) >= sysstat.SlotSize {
		sysstat.DecodeSlot(b, s)
		return
	}
	*s = sysstat.Slot{Stat: sysstat.Decode(b)}
}

// putSyscallStat writes s in its region layout.
func putSyscallStat(b []byte, s *abi.SyscallStat) {
	for i, v := range sysstat.Words(s) {
		binary.LittleEndian.PutUint64(b[8*i:], v)
	}
}

func (k *RegionKushm) controlU32(off uintptr) uint32 {
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&k.control[off])))
}

func (k *RegionKushm) controlU64(off uintptr) uint64 {
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&k.control[off])))
}

// global is the control section's global threshold settings, raw (the
// policy validates them as the kernel does); zero without a control
// section.
func (k *RegionKushm) global() sysstat.Global {
	if k.control == nil {
		return sysstat.Global{}
	}
	return sysstat.Global{
		Mode:        k.controlU32(abi.ControlThModeOff),
		Kx100:       k.controlU32(abi.ControlKx100Off),
		Warmup:      k.controlU32(abi.ControlWarmupOff),
		Qppm:        k.controlU32(abi.ControlQppmOff),
		FactorX1000: k.controlU32(abi.ControlFactorX1000Off),
		DecayShift:  k.controlU32(abi.ControlDecayShiftOff),
	}
}

// policy is the rule in force for syscall nr (docs/helpers.md).
func (k *RegionKushm) policy(nr uint32) sysstat.Policy {
	var word uint64
	if k.control != nil {
		word = k.controlU64(abi.ControlPolicyOff + 8*uintptr(nr))
	}
	return sysstat.PolicyOf(k.global(), word)
}

func (k *RegionKushm) SyscallThreshold(nr uint32) uint64 {
	if nr >= abi.NumSyscallOverrides {
		return 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.threshold(nr)
}

// threshold is docs/helpers.md's threshold; k.mu held.
func (k *RegionKushm) threshold(nr uint32) uint64 {
	if k.control != nil {
		if v := k.controlU64(abi.ControlOverridesOff + 8*uintptr(nr)); v != 0 {
			return v
		}
	}
	var m sysstat.Hist
	if k.syscalls != nil {
		var err error
		if m, err = k.regionStat(uint64(nr)); err != nil && !errors.Is(err, ErrNotFound) {
			return 0
		}
	}
	if p := k.private[nr]; p != nil {
		m.MergeSlot(p)
	}
	return sysstat.PolicyThreshold(&m, k.policy(nr))
}

func (k *RegionKushm) RecordLatency(nr uint32, latencyNs uint64) (bool, error) {
	if nr >= abi.NumSyscallOverrides {
		return false, ErrInvalid
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	th := k.threshold(nr)
	out := th != 0 && latencyNs > th
	h := sysstat.ValidDecayShift(k.global().DecayShift)
	if k.writer == nil {
		p := k.private[nr]
		if p == nil {
			p = &sysstat.Slot{}
			k.private[nr] = p
		}
		p.Record(latencyNs, out, h)
		return out, nil
	}
	t := k.writer
	slot := 0
	if t.NSlots() > 1 {
		slot = currentCPUCheap()
		if slot >= t.NSlots() {
			return false, ErrNoData
		}
	}
	vs := t.ValueSize()
	raw := make([]byte, t.NSlots()*vs)
	if err := t.Read(uint64(nr), nil, raw); err != nil {
		if !errors.Is(err, shm.ErrNotFound) {
			return false, tableErr(err)
		}
		if err := t.Insert(uint64(nr), nil, make([]byte, vs)); err != nil {
			if errors.Is(err, shm.ErrFull) {
				return false, ErrTableFull
			}
			return false, tableErr(err)
		}
		clear(raw)
	}
	b := raw[slot*vs : (slot+1)*vs]
	if vs >= sysstat.SlotSize {
		var s sysstat.Slot
		sysstat.DecodeSlot(b, &s)
		s.Record(latencyNs, out, h)
		sysstat.EncodeSlot(b, &s)
	} else {
		s := sysstat.Decode(b)
		sysstat.Add(&s, latencyNs, out)
		putSyscallStat(b, &s)
	}
	w := make([]uint64, vs/8)
	for i := range w {
		w[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	if err := t.UpdateWords(uint64(nr), slot, w); err != nil {
		return false, tableErr(err)
	}
	return out, nil
}
