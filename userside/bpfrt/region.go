package bpfrt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
)

// RegionKushm implements Kushm over a mapped kushm region: counters from
// the "pmu" section, tables from "procs" and "syscalls", thresholds from
// "syscalls" and "control", as the kernel module's kfuncs compute them.
//
// RecordLatency cannot write a region mapped read-only: in userspace the
// samples go to Welford statistics private to this RegionKushm, and a
// sample is an outlier when it is above the region's threshold (or, while
// the region has none, above the private statistics' own threshold).
type RegionKushm struct {
	pmu      *atomicarr.Array
	procs    *rcuhash.Table
	syscalls *rcuhash.Table
	control  []byte
	nslots   int

	mu    sync.Mutex
	local map[uint32]*welford
}

// NewRegionKushm builds the kfunc backend over r. Sections r lacks make
// the corresponding kfuncs return -ENODATA or -ENOENT.
func NewRegionKushm(r *shm.Region) (*RegionKushm, error) {
	k := &RegionKushm{local: map[uint32]*welford{}}
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
	if s, err := r.Section(abi.SecNameControl); err == nil && !s.Missing {
		if b, err := r.Bytes(s); err == nil && len(b) >= abi.ControlSize {
			k.control = b
		}
	}
	return k, nil
}

func (k *RegionKushm) ReadCounter(cpu, preset uint32) (uint64, error) {
	if k.pmu == nil {
		return 0, ErrNoData
	}
	if int(cpu) >= k.pmu.Rows() || int(preset) >= k.pmu.Slots() {
		return 0, ErrInvalid
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

func (k *RegionKushm) table(id uint32) *rcuhash.Table {
	switch id {
	case abi.TableProcs:
		return k.procs
	case abi.TableSyscalls:
		return k.syscalls
	}
	return nil
}

func (k *RegionKushm) TableLookup(table uint32, key uint64, buf []byte) (int, error) {
	t := k.table(table)
	if t == nil {
		if table > abi.TableSyscalls {
			return 0, ErrInvalid
		}
		return 0, ErrNotFound
	}
	if len(buf) < t.ValueSize() {
		return 0, ErrShortBuf
	}
	err := t.Lookup(key, buf)
	switch {
	case err == nil:
		return t.ValueSize(), nil
	case errors.Is(err, shm.ErrNotFound):
		return 0, ErrNotFound
	case errors.Is(err, shm.ErrRetry):
		return 0, ErrRetry
	case errors.Is(err, rcuhash.ErrShortBuffer):
		return 0, ErrShortBuf
	}
	return 0, ErrInvalid
}

func (k *RegionKushm) controlU32(off int) uint32 {
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&k.control[off])))
}

// params returns k and warmup from the control section, validated as the
// producer validates them.
func (k *RegionKushm) params() (kx100, warmup uint64) {
	kx100, warmup = abi.DefaultKx100, abi.DefaultWarmup
	if k.control == nil {
		return
	}
	if v := k.controlU32(12); v != 0 && v <= abi.MaxKx100 {
		kx100 = uint64(v)
	}
	if v := k.controlU32(16); v != 0 && v <= abi.MaxWarmup {
		warmup = uint64(v)
	}
	return
}

func (k *RegionKushm) SyscallThreshold(nr uint32) uint64 {
	if k.control != nil && nr < abi.NumSyscallOverrides {
		off := abi.ControlHeadSize + 8*int(nr)
		if v := atomic.LoadUint64((*uint64)(unsafe.Pointer(&k.control[off]))); v != 0 {
			return v
		}
	}
	if k.syscalls == nil {
		return 0
	}
	vs := k.syscalls.ValueSize()
	if vs < 64 {
		return 0
	}
	slots := make([]byte, k.syscalls.NSlots()*vs)
	if err := k.syscalls.Read(uint64(nr), nil, slots); err != nil {
		return 0
	}
	var w welford
	for j := 0; j < k.syscalls.NSlots(); j++ {
		b := slots[j*vs:]
		w.merge(welford{
			n:    binary.LittleEndian.Uint64(b[0:]),
			mean: float64(binary.LittleEndian.Uint64(b[8:])),
			m2:   float64(binary.LittleEndian.Uint64(b[16:])),
		})
	}
	kx100, warmup := k.params()
	return w.threshold(kx100, warmup)
}

func (k *RegionKushm) RecordLatency(nr uint32, latencyNs uint64) (bool, error) {
	if nr >= 1<<16 {
		return false, ErrInvalid
	}
	th := k.SyscallThreshold(nr)
	k.mu.Lock()
	defer k.mu.Unlock()
	w := k.local[nr]
	if w == nil {
		w = &welford{}
		k.local[nr] = w
	}
	if th == 0 {
		kx100, warmup := k.params()
		th = w.threshold(kx100, warmup)
	}
	w.add(float64(latencyNs))
	return th != 0 && latencyNs > th, nil
}

// welford is a running mean and sum of squared deviations.
type welford struct {
	n        uint64
	mean, m2 float64
}

func (w *welford) add(x float64) {
	w.n++
	d := x - w.mean
	w.mean += d / float64(w.n)
	w.m2 += d * (x - w.mean)
}

// merge is Chan et al.'s parallel combination.
func (w *welford) merge(o welford) {
	if o.n == 0 {
		return
	}
	if w.n == 0 {
		*w = o
		return
	}
	n := w.n + o.n
	d := o.mean - w.mean
	w.mean += d * float64(o.n) / float64(n)
	w.m2 += o.m2 + d*d*float64(w.n)*float64(o.n)/float64(n)
	w.n = n
}

func (w *welford) threshold(kx100, warmup uint64) uint64 {
	if w.n < warmup || w.n < 2 {
		return 0
	}
	sd := math.Sqrt(w.m2 / float64(w.n))
	t := w.mean + float64(kx100)/100*sd
	if t < 1 {
		return 1
	}
	if t >= math.MaxUint64 {
		return math.MaxUint64
	}
	return uint64(t)
}
