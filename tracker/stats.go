// SPDX-License-Identifier: Apache-2.0

package tracker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sort"
	"sync/atomic"
	"unsafe"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
)

// NumSyscalls bounds the syscall numbers with statistics and overrides.
const NumSyscalls = abi.NumSyscallOverrides

func satAdd(a, b uint64) uint64 {
	s, c := bits.Add64(a, b, 0)
	if c != 0 {
		return math.MaxUint64
	}
	return s
}

// satMul returns min(a*b, 2^64-1).
func satMul(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return math.MaxUint64
	}
	return lo
}

// ISqrt is floor(sqrt(x)), the integer square root of docs/helpers.md.
func ISqrt(x uint64) uint64 {
	var r uint64
	b := uint64(1) << 62
	for b > x {
		b >>= 2
	}
	for b != 0 {
		if x >= r+b {
			x -= r + b
			r = r>>1 + b
		} else {
			r >>= 1
		}
		b >>= 2
	}
	return r
}

// Merge combines per-CPU slots in index order with Chan et al.'s formula
// in the integer arithmetic of the kernel (docs/helpers.md): the result is
// bit-identical to what bpf_kushm_table_lookup returns.
func Merge(slots []abi.SyscallStat) abi.SyscallStat {
	var a abi.SyscallStat
	for _, s := range slots {
		if s.Count == 0 {
			continue
		}
		if a.Count == 0 {
			a = s
			continue
		}
		ma, mb := a.SumNs/a.Count, s.SumNs/s.Count
		d := ma - mb
		if mb > ma {
			d = mb - ma
		}
		n := satAdd(a.Count, s.Count)
		hi, lo := bits.Mul64(a.Count, s.Count)
		var w uint64
		if hi < n {
			w, _ = bits.Div64(hi, lo, n)
		} else {
			w = math.MaxUint64
		}
		dh, dl := bits.Mul64(d, d)
		term := uint64(math.MaxUint64)
		if dh == 0 {
			term = satMul(dl, w)
		}
		if w == 0 || d == 0 {
			term = 0
		}
		a.M2 = satAdd(satAdd(a.M2, s.M2), term)
		a.Count = n
		a.SumNs = satAdd(a.SumNs, s.SumNs)
		a.MaxNs = max(a.MaxNs, s.MaxNs)
		a.MinNs = min(a.MinNs, s.MinNs)
		a.Outliers = satAdd(a.Outliers, s.Outliers)
		a.LastNs = s.LastNs
	}
	if a.Count != 0 {
		a.MeanNs = a.SumNs / a.Count
	}
	return a
}

// StdDev is floor(sqrt(M2/count)), the population standard deviation.
func StdDev(s abi.SyscallStat) uint64 {
	if s.Count == 0 {
		return 0
	}
	return ISqrt(s.M2 / s.Count)
}

// Threshold is the adaptive threshold of merged statistics: 0 while
// count < max(warmup, 2), else mean + kx100·σ/100 (at least 1), saturating.
func Threshold(s abi.SyscallStat, kx100, warmup uint64) uint64 {
	if s.Count < warmup || s.Count < 2 {
		return 0
	}
	t := satAdd(s.SumNs/s.Count, satMul(kx100, StdDev(s))/100)
	if t == 0 {
		t = 1
	}
	return t
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
	n := len(raw) / valueSize
	out := make([]abi.SyscallStat, n)
	le := binary.LittleEndian
	for j := range out {
		b := raw[j*valueSize:]
		out[j] = abi.SyscallStat{
			Count: le.Uint64(b[0:]), MeanNs: le.Uint64(b[8:]), M2: le.Uint64(b[16:]),
			MaxNs: le.Uint64(b[24:]), MinNs: le.Uint64(b[32:]), SumNs: le.Uint64(b[40:]),
			Outliers: le.Uint64(b[48:]), LastNs: le.Uint64(b[56:]),
		}
	}
	return out
}

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
	c, _ := control(r)
	p := readParams(c)
	vs := t.ValueSize()
	var out []SyscallStat
	t.Range(func(e *rcuhash.Entry) bool {
		if e.Key >= NumSyscalls {
			return true
		}
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
