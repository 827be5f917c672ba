// SPDX-License-Identifier: Apache-2.0

package tracker

import (
	"errors"
	"fmt"
	"github.com/kushm/kushm/internal/sysstat"
	"sort"
	"sync/atomic"
	"unsafe"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
)

// NumSyscalls bounds the syscall numbers with statistics and overrides.
const NumSyscalls = abi.NumSyscallOverrides

// ISqrt is floor(sqrt(x)), the integer square root of docs/helpers.md.
func ISqrt(x uint64) uint64 { return sysstat.ISqrt(x) }

// Merge combines per-CPU slots in index order with Chan et al.'s formula
// in the integer arithmetic of the kernel (docs/helpers.md): the result is
// bit-identical to what bpf_kushm_table_lookup returns.
func Merge(slots []abi.SyscallStat) abi.SyscallStat { return sysstat.Merge(slots) }

// StdDev is floor(sqrt(M2/count)), the population standard deviation.
func StdDev(s abi.SyscallStat) uint64 { return sysstat.StdDev(s) }

// Threshold is the adaptive threshold of merged statistics: 0 while
// count < max(warmup, 2), else mean + kx100·σ/100 (at least 1), saturating.
func Threshold(s abi.SyscallStat, kx100, warmup uint64) uint64 {
	return sysstat.Threshold(&s, kx100, warmup)
}

// Params are the threshold parameters in force (control section, validated
// as the kernel does: out-of-range values mean the default).
type Params struct {
	Kx100  uint64 // k·100
	Warmup uint64 // samples before a threshold exists
}

func control(r *shm.Region) (*abi.Control, error) {
	sec, err := r.Section(abi.SecNameControl)
	if err != nil {
		return nil, err
	}
	b, err := r.Bytes(sec)
	if err != nil {
		return nil, err
	}
	if len(b) < abi.ControlSize {
		return nil, fmt.Errorf("control section: %d bytes: %w", len(b), shm.ErrCorrupt)
	}
	return (*abi.Control)(unsafe.Pointer(&b[0])), nil
}

func readParams(c *abi.Control) Params {
	p := Params{Kx100: abi.DefaultKx100, Warmup: abi.DefaultWarmup}
	if c == nil {
		return p
	}
	if v := atomic.LoadUint32(&c.Kx100); v != 0 && v <= abi.MaxKx100 {
		p.Kx100 = uint64(v)
	}
	if v := atomic.LoadUint32(&c.Warmup); v != 0 && v <= abi.MaxWarmup {
		p.Warmup = uint64(v)
	}
	return p
}

// ReadParams returns the threshold parameters of the region.
func ReadParams(r *shm.Region) Params {
	c, _ := control(r)
	return readParams(c)
}

// SyscallStat is the merged statistics of one syscall, with its threshold.
type SyscallStat struct {
	NR          uint32 `json:"nr"`
	Name        string `json:"name"`
	Count       uint64 `json:"count"`
	MeanNs      uint64 `json:"mean_ns"`
	StdDevNs    uint64 `json:"stddev_ns"`
	MinNs       uint64 `json:"min_ns"`
	MaxNs       uint64 `json:"max_ns"`
	LastNs      uint64 `json:"last_ns"`
	Outliers    uint64 `json:"outliers"`
	ThresholdNs uint64 `json:"threshold_ns"` // 0: warming up
	Override    bool   `json:"override"`     // ThresholdNs is the override
	M2          uint64 `json:"m2"`
	SumNs       uint64 `json:"sum_ns"`
}

// DecodeSlots decodes the raw per-CPU slots of a syscalls node.
func DecodeSlots(raw []byte, valueSize int) []abi.SyscallStat {
	if valueSize < 64 {
		return nil
	}
	out := make([]abi.SyscallStat, len(raw)/valueSize)
	for j := range out {
		out[j] = sysstat.Decode(raw[j*valueSize:])
	}
	return out
}

// MaxSyscallEntries is the largest syscalls table ReadSyscalls reads (the
// kernel module's syscalls_capacity is at most 4096).
const MaxSyscallEntries = 4096

// ReadSyscalls returns the statistics of every syscall in the region's
// "syscalls" table, by syscall number.
func ReadSyscalls(r *shm.Region) ([]SyscallStat, error) {
	t, err := rcuhash.Open(r, abi.SecNameSyscalls)
	if err != nil {
		if errors.Is(err, shm.ErrNoSection) {
			return nil, fmt.Errorf("read syscalls: %w", ErrNoSyscallTable)
		}
		return nil, fmt.Errorf("read syscalls: %w", err)
	}
	if t.Capacity() > MaxSyscallEntries {
		// Bounded work: a region may claim 2^24 live nodes.
		return nil, fmt.Errorf("read syscalls: a table of %d entries, more than the %d a producer makes: %w", t.Capacity(), MaxSyscallEntries, shm.ErrCorrupt)
	}
	c, _ := control(r)
	p := readParams(c)
	vs := t.ValueSize()
	var out []SyscallStat
	var seen [NumSyscalls]bool
	t.Range(func(e *rcuhash.Entry) bool {
		if e.Key >= NumSyscalls || seen[e.Key] {
			return true // out of range, or a duplicate key: a corrupt table
		}
		seen[e.Key] = true
		m := Merge(DecodeSlots(e.Slots, vs))
		s := SyscallStat{
			NR: uint32(e.Key), Name: SyscallName(uint32(e.Key)),
			Count: m.Count, MeanNs: m.MeanNs, StdDevNs: StdDev(m), MinNs: m.MinNs,
			MaxNs: m.MaxNs, LastNs: m.LastNs, Outliers: m.Outliers, M2: m.M2, SumNs: m.SumNs,
			ThresholdNs: Threshold(m, p.Kx100, p.Warmup),
		}
		if c != nil {
			if ov := atomic.LoadUint64(&c.SyscallOverrideNs[e.Key]); ov != 0 {
				s.ThresholdNs, s.Override = ov, true
			}
		}
		out = append(out, s)
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].NR < out[j].NR })
	return out, nil
}

// SetOverride writes a fixed threshold for syscall nr (0 = back to the
// adaptive one). The region must be opened with shm.Options.WritableControl.
func SetOverride(r *shm.Region, nr uint32, ns uint64) error {
	if nr >= NumSyscalls {
		return fmt.Errorf("set override of syscall %d: %w", nr, ErrInvalid)
	}
	c, err := writableControl(r)
	if err != nil {
		return fmt.Errorf("set override of syscall %d: %w", nr, err)
	}
	atomic.StoreUint64(&c.SyscallOverrideNs[nr], ns)
	return nil
}

// SetParams writes k·100 and the warm-up count (0 = default for either).
func SetParams(r *shm.Region, p Params) error {
	if p.Kx100 > abi.MaxKx100 || p.Warmup > abi.MaxWarmup {
		return fmt.Errorf("set threshold parameters: %w", ErrInvalid)
	}
	c, err := writableControl(r)
	if err != nil {
		return fmt.Errorf("set threshold parameters: %w", err)
	}
	atomic.StoreUint32(&c.Kx100, uint32(p.Kx100))
	atomic.StoreUint32(&c.Warmup, uint32(p.Warmup))
	return nil
}

func writableControl(r *shm.Region) (*abi.Control, error) {
	sec, err := r.Section(abi.SecNameControl)
	if err != nil {
		return nil, err
	}
	if !r.Writable(sec) {
		return nil, fmt.Errorf("control section: %w", shm.ErrReadOnly)
	}
	return control(r)
}
