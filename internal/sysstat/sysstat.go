package sysstat

import (
	"math"
	"math/bits"

	"github.com/kushm/kushm/internal/abi"
)

// SatAdd is min(a+b, 2^64-1).
func SatAdd(a, b uint64) uint64 {
	s, c := bits.Add64(a, b, 0)
	if c != 0 {
		return math.MaxUint64
	}
	return s
}

// SatMul is min(a*b, 2^64-1).
func SatMul(a, b uint64) uint64 {
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

// MergeInto merges b into a (docs/helpers.md, "Merge of slots"): Chan et
// al.'s formula in the kernel's integer arithmetic.
func MergeInto(a, b *abi.SyscallStat) {
	if b.Count == 0 { // an empty slot (docs/region-format.md §4.1)
		return
	}
	if a.Count == 0 {
		*a = *b
		a.MeanNs = a.SumNs / a.Count
		return
	}
	ma, mb := a.SumNs/a.Count, b.SumNs/b.Count
	d := ma - mb
	if mb > ma {
		d = mb - ma
	}
	n := SatAdd(a.Count, b.Count)
	a.M2 = SatAdd(SatAdd(a.M2, b.M2), CrossTerm(d, a.Count, b.Count, n))
	a.Count = n
	a.SumNs = SatAdd(a.SumNs, b.SumNs)
	a.MeanNs = a.SumNs / a.Count
	a.MaxNs = max(a.MaxNs, b.MaxNs)
	a.MinNs = min(a.MinNs, b.MinNs)
	a.Outliers = SatAdd(a.Outliers, b.Outliers)
	a.LastNs = b.LastNs
}

// CrossTerm is floor(d² · na · nb / n), saturating at 2^64-1, exactly
// (no intermediate rounding), for n = na + nb ≥ 2 with na, nb ≥ 1: the
// between-groups part of Chan et al.'s M2. With x = d², q = floor(na·nb/n)
// and r = na·nb mod n, it is x·q + floor(x·r/n); every division has a
// quotient below 2^64 (q ≤ n/4, x·r/n < x), which is what the kernel's
// mul_u64_u64_div_u64 (one divq on x86-64) needs.
func CrossTerm(d, na, nb, n uint64) uint64 {
	if d == 0 || na == 0 || nb == 0 || n < 2 {
		return 0
	}
	xh, x := bits.Mul64(d, d)
	if xh != 0 {
		return math.MaxUint64
	}
	yh, yl := bits.Mul64(na, nb)
	if yh >= n {
		return math.MaxUint64 // counts saturated: n is not na+nb
	}
	q, r := bits.Div64(yh, yl, n)
	ph, pl := bits.Mul64(x, q)
	if ph != 0 {
		return math.MaxUint64
	}
	rh, rl := bits.Mul64(x, r)
	f, _ := bits.Div64(rh, rl, n) // rh < n because r < n
	return SatAdd(pl, f)
}

// Threshold is the adaptive threshold of merged statistics: 0 while
// count < max(warmup, 2), else mean + kx100·σ/100 (at least 1), saturating.
func Threshold(s *abi.SyscallStat, kx100, warmup uint64) uint64 {
	if s.Count < warmup || s.Count < 2 {
		return 0
	}
	t := SatAdd(s.SumNs/s.Count, SatMul(kx100, ISqrt(s.M2/s.Count))/100)
	if t == 0 {
		t = 1
	}
	return t
}

// Add is the per-slot integer update of docs/helpers.md, as the
// kernel's kf_welford computes it.
func Add(v *abi.SyscallStat, x uint64, outlier bool) {
	cnt := v.Count + 1
	sum := SatAdd(v.SumNs, x)
	var meanOld uint64
	if v.Count != 0 {
		meanOld = v.SumNs / v.Count
	}
	meanNew := sum / cnt
	if v.Count != 0 {
		d1, d2 := int64(x-meanOld), int64(x-meanNew)
		a1, a2 := uint64(d1), uint64(d2)
		if d1 < 0 {
			a1 = -a1
		}
		if d2 < 0 {
			a2 = -a2
		}
		hi, lo := bits.Mul64(a1, a2)
		switch {
		case hi == 0 && lo == 0:
		case (d1 < 0) == (d2 < 0): // p > 0
			if hi != 0 {
				v.M2 = math.MaxUint64
			} else {
				v.M2 = SatAdd(v.M2, lo)
			}
		default: // p < 0: the kernel compares the low 64 bits of -p
			if lo >= v.M2 {
				v.M2 = 0
			} else {
				v.M2 -= lo
			}
		}
	}
	v.Count = cnt
	v.SumNs = sum
	v.MeanNs = meanNew
	if cnt == 1 || x > v.MaxNs {
		v.MaxNs = x
	}
	if cnt == 1 || x < v.MinNs {
		v.MinNs = x
	}
	v.LastNs = x
	if outlier {
		v.Outliers++
	}
}

// Merge merges per-CPU slots in index order (bit-identical to what
// bpf_kushm_table_lookup returns for the syscalls table).
func Merge(slots []abi.SyscallStat) abi.SyscallStat {
	var a abi.SyscallStat
	for i := range slots {
		MergeInto(&a, &slots[i])
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

// Decode reads a struct kushm_syscall_stat (64 bytes, little-endian) from
// b: abi.DecodeSyscallStat, the one codec of a syscall slot.
func Decode(b []byte) abi.SyscallStat { return abi.DecodeSyscallStat(b) }

// Words is s as the eight u64 words of its region layout (abi's codec).
func Words(s *abi.SyscallStat) [8]uint64 { return s.Words() }
