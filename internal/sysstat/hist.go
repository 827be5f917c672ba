package sysstat

//go:generate go run ./histgen -go hist_table.go -c ../../kmod/include/generated/kushm_hist.h

import (
	"encoding/binary"
	"math"
	"math/bits"

	"github.com/kushm/kushm/internal/abi"
)

// Latency histograms (docs/helpers.md, "Latency histograms"): exponential
// buckets laid out exactly like a Prometheus native histogram of seconds
// with schema HistSchema, i.e. Prometheus bucket i holds the latencies v
// with 2^((i-1)/8) s < v ≤ 2^(i/8) s. In whole nanoseconds that is
// bound[b-1] < v ≤ bound[b] with bound[b] = floor(2^(i/8)·10^9), the
// table histgen computes exactly; every bucket is at most 2^(1/8) ≈ 9.05 %
// wide, so a bucket bound is within 9.05 % of any latency in it.
const (
	HistSchema   = abi.HistSchema
	HistMinIndex = abi.HistMinIndex // Prometheus index of bucket 1: (0.93 ns, 1.015 ns], holds 1 ns
	HistMaxIndex = abi.HistMaxIndex // Prometheus index of bucket HistOverflow-1: up to 107.6 s
	// HistBuckets: bucket 0 holds 0 ns (Prometheus' zero bucket, zero
	// threshold 0), buckets 1..HistOverflow-1 are Prometheus indexes
	// HistMinIndex..HistMaxIndex, HistOverflow holds everything above
	// 107.6 s.
	HistBuckets  = abi.SyscallHistBuckets
	HistOverflow = HistBuckets - 1
	// HistCountMax is the largest bucket count of a slot (u16): a sample
	// that finds its bucket there halves the slot first.
	HistCountMax = math.MaxUint16
)

// Slot layout: the Welford words of abi.SyscallStat (64 bytes), then
// Total and Decays, then the HistBuckets u16 counts.
const (
	SlotTotalOff   = abi.SyscallTotalOff
	SlotDecaysOff  = abi.SyscallDecaysOff
	SlotBucketsOff = abi.SyscallBucketsOff
	SlotSize       = abi.SyscallSlotSize // 672 bytes
)

// Decay: a slot's owner halves it every 2^h of its own samples.
const (
	DefaultDecayShift = abi.DefaultDecayShift // h: halve every 8192 samples of a CPU (docs/latency-thresholds.md)
	MinDecayShift     = abi.MinDecayShift
	MaxDecayShift     = abi.MaxDecayShift // 2^40 samples: in practice never
)

// HistIndex is the bucket of a latency of ns nanoseconds: 0 for 0, the
// smallest b with histBounds[b] ≥ ns, or HistOverflow. A binary search
// over the table (9 steps), identical in C.
func HistIndex(ns uint64) int {
	if ns == 0 {
		return 0
	}
	if ns > histBounds[HistOverflow-1] {
		return HistOverflow
	}
	lo, hi := 1, HistOverflow-1 // histBounds[hi] >= ns
	for lo < hi {
		mid := (lo + hi) / 2
		if histBounds[mid] >= ns {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// HistBound is the largest latency in ns of bucket b (MaxUint64 for the
// overflow bucket).
func HistBound(b int) uint64 {
	if b >= HistOverflow {
		return math.MaxUint64
	}
	return histBounds[b]
}

// HistPromIndex is the Prometheus native-histogram bucket index (schema
// HistSchema, unit seconds) of bucket b in 1..HistOverflow-1.
func HistPromIndex(b int) int { return b - 1 + HistMinIndex }

// Slot is one CPU's slot of a syscall: Welford statistics of the window,
// the samples ever recorded, the number of halvings and the histogram.
type Slot struct {
	Stat    abi.SyscallStat // Count, SumNs, M2 decay; Outliers, Max, Min, Last do not
	Total   uint64          // samples ever recorded (saturating; never decays)
	Decays  uint64          // halvings of this slot
	Buckets [HistBuckets]uint16
}

// Halve is the decay step: every bucket, Count, SumNs and M2 are halved
// (floor); the mean is recomputed; an emptied slot keeps no sum or M2.
func (s *Slot) Halve() {
	for i := range s.Buckets {
		s.Buckets[i] >>= 1
	}
	st := &s.Stat
	st.Count >>= 1
	st.SumNs >>= 1
	st.M2 >>= 1
	if st.Count == 0 {
		st.SumNs, st.M2, st.MeanNs = 0, 0, 0
	} else {
		st.MeanNs = st.SumNs / st.Count
	}
	s.Decays = SatAdd(s.Decays, 1)
}

// Record adds a sample of x ns as the slot's owner does (kf_record):
// halve first if x's bucket is saturated, then the Welford update, the
// bucket, Total; then halve if Total is a multiple of 2^h (h as
// ValidDecayShift returns it).
func (s *Slot) Record(x uint64, outlier bool, h uint32) {
	b := HistIndex(x)
	if s.Buckets[b] == HistCountMax {
		s.Halve()
	}
	Add(&s.Stat, x, outlier)
	s.Buckets[b]++
	s.Total = SatAdd(s.Total, 1)
	if h < 64 && s.Total&(1<<h-1) == 0 {
		s.Halve()
	}
}

// ValidDecayShift is h as the producer validates it: 0 or out of
// [MinDecayShift, MaxDecayShift] mean DefaultDecayShift.
func ValidDecayShift(h uint32) uint32 {
	if h < MinDecayShift || h > MaxDecayShift {
		return DefaultDecayShift
	}
	return h
}

// Hist is the merge of a syscall's slots: Welford statistics merged with
// Chan's formula (MergeInto), Total and Decays and every bucket summed.
type Hist struct {
	Stat    abi.SyscallStat
	Total   uint64
	Decays  uint64
	Buckets [HistBuckets]uint64
}

// MergeSlot merges one slot into h (merge rule "sum" for the buckets).
func (h *Hist) MergeSlot(s *Slot) {
	MergeInto(&h.Stat, &s.Stat)
	h.Total = SatAdd(h.Total, s.Total)
	h.Decays = SatAdd(h.Decays, s.Decays)
	// Four buckets at a time, skipping empty groups (most are), as the
	// kernel does.
	for i := 0; i < HistBuckets; i += 4 {
		b := s.Buckets[i : i+4 : i+4]
		if b[0]|b[1]|b[2]|b[3] == 0 {
			continue
		}
		h.Buckets[i] += uint64(b[0])
		h.Buckets[i+1] += uint64(b[1])
		h.Buckets[i+2] += uint64(b[2])
		h.Buckets[i+3] += uint64(b[3])
	}
}

// Count is the number of samples in the histogram (the decayed window).
func (h *Hist) Count() uint64 {
	var n uint64
	for _, c := range h.Buckets {
		n += c
	}
	return n
}

// MergeSlots merges slots in index order.
func MergeSlots(slots []Slot) Hist {
	var h Hist
	for i := range slots {
		h.MergeSlot(&slots[i])
	}
	return h
}

// QuantileBucket is the bucket holding the q-quantile (q = qppm/10^6) of
// the histogram: the first bucket where the cumulative count reaches
// rank = ceil(N·q), at least 1; -1 when it is empty. Buckets are bounded
// (u16 per slot, at most MaxCPUs slots), so N < 2^37 and no sum overflows.
func (h *Hist) QuantileBucket(qppm uint32) int {
	n := h.Count()
	if n == 0 {
		return -1
	}
	rank := CeilPPM(n, qppm)
	if rank == 0 {
		rank = 1
	}
	var cum uint64
	for i, c := range h.Buckets {
		cum += c
		if cum >= rank {
			return i
		}
	}
	return HistOverflow
}

// CeilPPM is ceil(n·ppm/10^6) without overflow for any n and ppm ≤ 10^6.
func CeilPPM(n uint64, ppm uint32) uint64 {
	const m = 1_000_000
	return n/m*uint64(ppm) + (n%m*uint64(ppm)+m-1)/m
}

// Threshold modes (per syscall in the control section).
const (
	ModeInherit  = abi.ThModeInherit  // per-syscall policy word: use the global mode
	ModeSigma    = abi.ThModeSigma    // mean + k·σ of the window's Welford statistics
	ModeQuantile = abi.ThModeQuantile // q-quantile's bucket bound × factor
	// ModeInterp: the q-quantile interpolated linearly inside its bucket
	// (as Prometheus' histogram_quantile does) × factor.
	ModeInterp = abi.ThModeInterp
)

// Policy defaults and bounds (out of range: the default is used).
const (
	DefaultQppm        = abi.DefaultQppm // q = 0.999
	MaxQppm            = abi.MaxQppm
	DefaultFactorX1000 = abi.DefaultFactorX1000 // × 1.0
	MaxFactorX1000     = abi.MaxFactorX1000
)

// Policy is the threshold rule of one syscall, validated.
type Policy struct {
	Mode        uint32 // ModeSigma or ModeQuantile
	Kx100       uint64 // sigma mode: k·100
	Qppm        uint32 // quantile mode: q in parts per million
	FactorX1000 uint64 // quantile mode: factor·1000
	Warmup      uint64 // samples before a threshold exists
}

// Global is the global part of the control section, raw (as loaded).
type Global struct {
	Mode, Kx100, Warmup, Qppm, FactorX1000, DecayShift uint32
}

// PolicyOf validates the global settings and the syscall's policy word
// (docs/helpers.md: bits 0-3 mode, 4-31 k·100 or q·10^6, 32-63 factor·1000;
// 0 fields inherit the global value) into the policy in force.
func PolicyOf(g Global, word uint64) Policy {
	p := Policy{Mode: ModeSigma, Kx100: abi.DefaultKx100, Qppm: DefaultQppm,
		FactorX1000: DefaultFactorX1000, Warmup: abi.DefaultWarmup}
	if g.Mode == ModeQuantile || g.Mode == ModeInterp {
		p.Mode = g.Mode
	}
	if g.Kx100 != 0 && g.Kx100 <= abi.MaxKx100 {
		p.Kx100 = uint64(g.Kx100)
	}
	if g.Warmup != 0 && g.Warmup <= abi.MaxWarmup {
		p.Warmup = uint64(g.Warmup)
	}
	if g.Qppm != 0 && g.Qppm <= MaxQppm {
		p.Qppm = g.Qppm
	}
	if g.FactorX1000 != 0 && g.FactorX1000 <= MaxFactorX1000 {
		p.FactorX1000 = uint64(g.FactorX1000)
	}
	mode, param, factor := uint32(word&0xf), uint32(word>>4&0xfffffff), uint32(word>>32)
	switch mode {
	case ModeSigma:
		p.Mode = ModeSigma
		if param != 0 && param <= abi.MaxKx100 {
			p.Kx100 = uint64(param)
		}
	case ModeQuantile, ModeInterp:
		p.Mode = mode
		if param != 0 && param <= MaxQppm {
			p.Qppm = param
		}
		if factor != 0 && factor <= MaxFactorX1000 {
			p.FactorX1000 = uint64(factor)
		}
	}
	return p
}

// PolicyWord packs a per-syscall policy word (the inverse of PolicyOf's
// decoding; param is k·100 for ModeSigma, q·10^6 for ModeQuantile).
func PolicyWord(mode, param, factorX1000 uint32) uint64 {
	return uint64(mode&0xf) | uint64(param&0xfffffff)<<4 | uint64(factorX1000)<<32
}

// Quantile is the q-quantile (q = qppm/10^6) of the histogram in ns: the
// bound of its bucket, or (interp) the bound interpolated linearly inside
// the bucket; MaxUint64 in the overflow bucket, 0 when empty.
func (h *Hist) Quantile(qppm uint32, interp bool) uint64 {
	n := h.Count()
	if n == 0 {
		return 0
	}
	return h.quantile(n, qppm, interp)
}

func (h *Hist) quantile(n uint64, qppm uint32, interp bool) uint64 {
	rank := max(CeilPPM(n, qppm), 1)
	var cum uint64
	b := 0
	for ; b < HistOverflow; b++ {
		if cum+h.Buckets[b] >= rank {
			break
		}
		cum += h.Buckets[b]
	}
	if b == HistOverflow {
		return math.MaxUint64
	}
	v := histBounds[b]
	if interp && b > 0 {
		// lower + (upper-lower)·(rank-cum)/count: rank-cum ≤ count, so
		// the 128-bit quotient fits in 64 bits.
		lo := histBounds[b-1]
		hi, l := bits.Mul64(v-lo, rank-cum)
		q, _ := bits.Div64(hi, l, h.Buckets[b])
		v = lo + q
	}
	return v
}

// QuantileThreshold is the quantile mode's threshold of h: 0 while the
// window holds fewer than max(warmup, 2) samples, else the bound of the
// q-quantile's bucket × factor (saturating; MaxUint64 for the overflow
// bucket), at least 1.
func QuantileThreshold(h *Hist, qppm uint32, factorX1000, warmup uint64, interp bool) uint64 {
	n := h.Count()
	if n < warmup || n < 2 {
		return 0
	}
	v := h.quantile(n, qppm, interp)
	if v == math.MaxUint64 {
		return v
	}
	t := SatMul(v, factorX1000) / 1000
	if t == 0 {
		t = 1
	}
	return t
}

// PolicyThreshold is the threshold of h under p (no override).
func PolicyThreshold(h *Hist, p Policy) uint64 {
	if p.Mode == ModeQuantile || p.Mode == ModeInterp {
		return QuantileThreshold(h, p.Qppm, p.FactorX1000, p.Warmup, p.Mode == ModeInterp)
	}
	return Threshold(&h.Stat, p.Kx100, p.Warmup)
}

// DecodeSlot reads a slot of SlotSize bytes (little-endian) from b.
func DecodeSlot(b []byte, s *Slot) {
	s.Stat = Decode(b)
	s.Total = binary.LittleEndian.Uint64(b[SlotTotalOff:])
	s.Decays = binary.LittleEndian.Uint64(b[SlotDecaysOff:])
	for i := range s.Buckets {
		s.Buckets[i] = binary.LittleEndian.Uint16(b[SlotBucketsOff+2*i:])
	}
}

// EncodeSlot writes s in its region layout into b (SlotSize bytes).
func EncodeSlot(b []byte, s *Slot) {
	for i, v := range Words(&s.Stat) {
		binary.LittleEndian.PutUint64(b[8*i:], v)
	}
	binary.LittleEndian.PutUint64(b[SlotTotalOff:], s.Total)
	binary.LittleEndian.PutUint64(b[SlotDecaysOff:], s.Decays)
	for i, c := range s.Buckets {
		binary.LittleEndian.PutUint16(b[SlotBucketsOff+2*i:], c)
	}
}

// The kernel's per-CPU threshold cache (kf_record_threshold): a CPU
// recomputes a syscall's threshold every CacheRefresh of its samples, on
// every sample while it is 0, and on its next sample after any outlier of
// the syscall (any CPU).
const CacheRefresh = 32

// Cache is one CPU's cached threshold of one syscall.
type Cache struct {
	Th  uint64
	Gen uint32
	Age uint8
}

// Get returns the threshold in force: the cached one, or compute() when
// the cache is stale (age spent, 0, or gen moved on).
func (c *Cache) Get(gen uint32, compute func() uint64) uint64 {
	if c.Age == 0 || c.Th == 0 || c.Gen != gen {
		c.Th = compute()
		c.Gen = gen
		c.Age = CacheRefresh
	}
	c.Age--
	return c.Th
}

// Sim is bpf_kushm_record_latency of one syscall as the kernel runs it
// (kf_record), for the evaluation harness and the kernel-parity tests:
// per-CPU slots and per-CPU threshold caches, the outlier generation, the
// control section's global settings, the syscall's policy word and
// override.
type Sim struct {
	Slots    []Slot
	Caches   []Cache
	Gen      uint32
	Global   Global
	Word     uint64 // the syscall's policy word
	Override uint64 // the syscall's override (0: none)
	// NoCache computes the threshold afresh for every sample, as the
	// userspace runtime (userside/bpfrt) does.
	NoCache bool
}

// NewSim is a Sim of ncpus CPUs.
func NewSim(ncpus int, g Global) *Sim {
	return &Sim{Slots: make([]Slot, ncpus), Caches: make([]Cache, ncpus), Global: g}
}

// Threshold is bpf_kushm_syscall_threshold: computed afresh.
func (s *Sim) Threshold() uint64 {
	if s.Override != 0 {
		return s.Override
	}
	m := MergeSlots(s.Slots)
	return PolicyThreshold(&m, PolicyOf(s.Global, s.Word))
}

// Record is bpf_kushm_record_latency(nr, x) on CPU cpu: the decision uses
// the threshold in force before the sample (cached per CPU).
func (s *Sim) Record(cpu int, x uint64) bool {
	th := s.Override
	switch {
	case th != 0:
	case s.NoCache:
		th = s.Threshold()
	default:
		th = s.Caches[cpu].Get(s.Gen, s.Threshold)
	}
	out := th != 0 && x > th
	s.Slots[cpu].Record(x, out, ValidDecayShift(s.Global.DecayShift))
	if out {
		s.Gen++
	}
	return out
}
