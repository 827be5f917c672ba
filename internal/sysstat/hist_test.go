package sysstat

import (
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestBoundsExact: every bound is floor(2^(i/8)·10^9), checked in exact
// integers: bound^8 ≤ 2^i·10^72 < (bound+1)^8.
func TestBoundsExact(t *testing.T) {
	e72 := new(big.Int).Exp(big.NewInt(10), big.NewInt(72), nil)
	pow8 := func(v uint64) *big.Int {
		x := new(big.Int).SetUint64(v)
		return new(big.Int).Exp(x, big.NewInt(8), nil)
	}
	for b := 1; b < HistOverflow; b++ {
		i := HistPromIndex(b)
		lo, hi := pow8(histBounds[b]), pow8(histBounds[b]+1)
		mid := new(big.Int).Set(e72)
		if i >= 0 {
			mid.Lsh(mid, uint(i))
		} else {
			lo.Lsh(lo, uint(-i))
			hi.Lsh(hi, uint(-i))
		}
		if lo.Cmp(mid) > 0 || hi.Cmp(mid) <= 0 {
			t.Fatalf("bucket %d (index %d): bound %d is not floor(2^(i/8)·1e9)", b, i, histBounds[b])
		}
	}
	if histBounds[1] != 1 || HistBound(HistOverflow-1) < 100_000_000_000 {
		t.Fatalf("range: first %d, last %d", histBounds[1], HistBound(HistOverflow-1))
	}
	if SlotSize > 1024 {
		t.Fatalf("slot of %d bytes, more than 1 KiB", SlotSize)
	}
}

func TestHistIndex(t *testing.T) {
	check := func(v uint64) {
		b := HistIndex(v)
		if b < 0 || b >= HistBuckets {
			t.Fatalf("HistIndex(%d) = %d", v, b)
		}
		if v > HistBound(b) || (b > 0 && v <= HistBound(b-1)) {
			t.Fatalf("HistIndex(%d) = %d: bounds (%d, %d]", v, b, HistBound(b-1), HistBound(b))
		}
	}
	for _, v := range []uint64{0, 1, 2, 3, 1000, math.MaxUint64, math.MaxUint64 - 1} {
		check(v)
	}
	for b := 1; b < HistOverflow; b++ {
		check(histBounds[b])
		check(histBounds[b] + 1)
		check(histBounds[b] - 1)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 200000; i++ {
		check(rng.Uint64() >> rng.IntN(64))
	}
}

// TestRelativeError: a latency's bucket bound is within 2^(1/8) (9.05 %)
// of it, the schema's relative error.
func TestRelativeError(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 200000; i++ {
		v := 1 + rng.Uint64()>>(rng.IntN(64)+28)
		if v > histBounds[HistOverflow-1] {
			continue
		}
		if bd := HistBound(HistIndex(v)); float64(bd) > float64(v)*1.0906 {
			t.Fatalf("v %d in bucket with bound %d (%.2f %%)", v, bd, 100*(float64(bd)/float64(v)-1))
		}
	}
}

func TestDecayPeriodic(t *testing.T) {
	var s Slot
	const h = 6
	for i := 0; i < 64; i++ {
		s.Record(1000, false, h)
	}
	b := HistIndex(1000)
	// 64 samples: halved once at the 64th.
	if s.Buckets[b] != 32 || s.Stat.Count != 32 || s.Stat.SumNs != 32000 || s.Total != 64 || s.Decays != 1 {
		t.Fatalf("after 2^h samples: bucket %d count %d sum %d total %d decays %d", s.Buckets[b], s.Stat.Count, s.Stat.SumNs, s.Total, s.Decays)
	}
	if s.Stat.MeanNs != 1000 || s.Stat.MaxNs != 1000 {
		t.Fatalf("mean %d max %d", s.Stat.MeanNs, s.Stat.MaxNs)
	}
	// A run of single samples keeps the window bounded by 2^(h+1).
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 10000; i++ {
		s.Record(uint64(rng.IntN(1e6)), false, h)
		var n uint64
		for _, c := range s.Buckets {
			n += uint64(c)
		}
		if n >= 1<<(h+1) || s.Stat.Count >= 1<<(h+1) {
			t.Fatalf("window %d / count %d after %d samples", n, s.Stat.Count, i)
		}
	}
}

// TestDecaySaturation: with decay off in practice (h = 40), a bucket at
// 65535 halves the slot before the next sample lands in it.
func TestDecaySaturation(t *testing.T) {
	var s Slot
	for i := 0; i < HistCountMax; i++ {
		s.Record(5000, false, MaxDecayShift)
	}
	b := HistIndex(5000)
	if s.Buckets[b] != HistCountMax || s.Decays != 0 {
		t.Fatalf("bucket %d decays %d", s.Buckets[b], s.Decays)
	}
	s.Record(7, false, MaxDecayShift)
	if s.Decays != 0 || s.Buckets[HistIndex(7)] != 1 {
		t.Fatal("another bucket's sample halved the slot")
	}
	s.Record(5000, false, MaxDecayShift)
	if s.Buckets[b] != HistCountMax/2+1 || s.Decays != 1 || s.Buckets[HistIndex(7)] != 0 || s.Stat.Count != (HistCountMax+1)/2+1 { // 65536 samples halved, plus one
		t.Fatalf("after saturation: bucket %d decays %d count %d", s.Buckets[b], s.Decays, s.Stat.Count)
	}
	if s.Total != HistCountMax+2 {
		t.Fatalf("total %d", s.Total)
	}
}

// TestQuantileBruteForce: the quantile bucket's bound is at or above the
// exact q-quantile of the samples (sorted) and within the schema's
// relative error of it, for samples spread over slots.
func TestQuantileBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	for trial := 0; trial < 300; trial++ {
		slots := make([]Slot, 1+rng.IntN(8))
		var xs []uint64
		n := 1 + rng.IntN(5000)
		for i := 0; i < n; i++ {
			x := uint64(math.Exp(rng.NormFloat64()*2 + 8))
			xs = append(xs, x)
			slots[rng.IntN(len(slots))].Record(x, false, MaxDecayShift)
		}
		slices.Sort(xs)
		h := MergeSlots(slots)
		if h.Count() != uint64(n) || h.Stat.Count != uint64(n) {
			t.Fatalf("count %d/%d, want %d", h.Count(), h.Stat.Count, n)
		}
		for _, q := range []uint32{1, 500_000, 900_000, 990_000, 999_000, 999_999} {
			rank := CeilPPM(uint64(n), q)
			if rank == 0 {
				rank = 1
			}
			exact := xs[rank-1]
			bd := HistBound(h.QuantileBucket(q))
			if bd < exact || (exact > 0 && float64(bd) > float64(exact)*1.0906) {
				t.Fatalf("n %d q %d: bucket bound %d, exact quantile %d", n, q, bd, exact)
			}
		}
	}
}

func TestCeilPPM(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for i := 0; i < 100000; i++ {
		n := rng.Uint64() >> rng.IntN(64)
		q := uint32(rng.IntN(1_000_001))
		want := new(big.Int).Mul(new(big.Int).SetUint64(n), big.NewInt(int64(q)))
		want.Add(want, big.NewInt(999_999))
		want.Quo(want, big.NewInt(1_000_000))
		if got := CeilPPM(n, q); got != want.Uint64() {
			t.Fatalf("CeilPPM(%d, %d) = %d, want %s", n, q, got, want)
		}
	}
}

func TestPolicyOf(t *testing.T) {
	p := PolicyOf(Global{}, 0)
	if p.Mode != ModeSigma || p.Kx100 != 300 || p.Qppm != DefaultQppm || p.FactorX1000 != 1000 || p.Warmup != 64 {
		t.Fatalf("defaults %+v", p)
	}
	p = PolicyOf(Global{Mode: ModeQuantile, Qppm: 990_000, FactorX1000: 1500}, 0)
	if p.Mode != ModeQuantile || p.Qppm != 990_000 || p.FactorX1000 != 1500 {
		t.Fatalf("global quantile %+v", p)
	}
	p = PolicyOf(Global{Mode: ModeQuantile}, PolicyWord(ModeSigma, 450, 0))
	if p.Mode != ModeSigma || p.Kx100 != 450 {
		t.Fatalf("per-syscall sigma %+v", p)
	}
	p = PolicyOf(Global{}, PolicyWord(ModeQuantile, 999_900, 2000))
	if p.Mode != ModeQuantile || p.Qppm != 999_900 || p.FactorX1000 != 2000 {
		t.Fatalf("per-syscall quantile %+v", p)
	}
	// Out of range: defaults.
	p = PolicyOf(Global{Mode: 9, Kx100: 1 << 30, Qppm: 1_000_000, FactorX1000: 1 << 31, Warmup: 1 << 31}, PolicyWord(7, 5, 5))
	if p.Mode != ModeSigma || p.Kx100 != 300 || p.Qppm != DefaultQppm || p.FactorX1000 != 1000 || p.Warmup != 64 {
		t.Fatalf("out of range %+v", p)
	}
	if ValidDecayShift(0) != DefaultDecayShift || ValidDecayShift(3) != DefaultDecayShift || ValidDecayShift(41) != DefaultDecayShift || ValidDecayShift(9) != 9 {
		t.Fatal("ValidDecayShift")
	}
}

func TestQuantileThreshold(t *testing.T) {
	var s Slot
	for i := 0; i < 999; i++ {
		s.Record(1000, false, MaxDecayShift)
	}
	h := MergeSlots([]Slot{s})
	if th := QuantileThreshold(&h, DefaultQppm, 1000, 64, false); th != HistBound(HistIndex(1000)) {
		t.Fatalf("threshold %d", th)
	}
	if th := QuantileThreshold(&h, DefaultQppm, 2000, 64, false); th != 2*HistBound(HistIndex(1000)) {
		t.Fatalf("factor 2: %d", th)
	}
	if th := QuantileThreshold(&h, DefaultQppm, 1000, 1000, false); th != 0 {
		t.Fatalf("warm-up: %d", th)
	}
	s.Record(math.MaxUint64, false, MaxDecayShift)
	s.Record(math.MaxUint64, false, MaxDecayShift)
	h = MergeSlots([]Slot{s})
	if th := QuantileThreshold(&h, DefaultQppm, 1000, 64, false); th != math.MaxUint64 {
		t.Fatalf("overflow bucket: %d", th)
	}
	var z Slot
	for i := 0; i < 100; i++ {
		z.Record(0, false, MaxDecayShift)
	}
	h = MergeSlots([]Slot{z})
	if th := QuantileThreshold(&h, DefaultQppm, 1000, 64, false); th != 1 {
		t.Fatalf("all zero: %d", th)
	}
}

func TestSlotEncoding(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	var s, d Slot
	for i := 0; i < 1000; i++ {
		s.Record(rng.Uint64()>>rng.IntN(64), rng.IntN(3) == 0, 7)
	}
	b := make([]byte, SlotSize)
	EncodeSlot(b, &s)
	DecodeSlot(b, &d)
	if d != s {
		t.Fatal("decode(encode(s)) != s")
	}
}

// TestSimCache: the Sim recomputes its cached threshold every 32 samples
// and after every outlier, as the kernel does.
func TestSimCache(t *testing.T) {
	sim := NewSim(2, Global{Mode: ModeQuantile, Warmup: 10})
	for i := 0; i < 100; i++ {
		if sim.Record(i%2, 1000) {
			t.Fatalf("sample %d of a constant stream flagged", i)
		}
	}
	if !sim.Record(0, 100_000) {
		t.Fatal("a 100x sample not flagged")
	}
	if sim.Gen != 1 || sim.Caches[1].Gen != 0 {
		t.Fatal("generation")
	}
	sim.Override = 50
	if !sim.Record(1, 51) || sim.Record(1, 50) {
		t.Fatal("override")
	}
}

func BenchmarkSlotRecord(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	xs := make([]uint64, 4096)
	for i := range xs {
		xs[i] = uint64(math.Exp(rng.NormFloat64() + 8))
	}
	var s Slot
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Record(xs[i&4095], false, DefaultDecayShift)
	}
}

// benchmarkThreshold64: merge 64 CPUs' slots and compute the threshold,
// what a cache refresh of bpf_kushm_record_latency and every
// bpf_kushm_syscall_threshold call do on a 64-CPU machine.
func benchmarkThreshold64(b *testing.B, mode uint32) {
	rng := rand.New(rand.NewPCG(2, 2))
	slots := make([]Slot, 64)
	for j := range slots {
		for k := 0; k < 5000; k++ {
			slots[j].Record(uint64(math.Exp(rng.NormFloat64()+8)), false, DefaultDecayShift)
		}
	}
	p := PolicyOf(Global{Mode: mode}, 0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := MergeSlots(slots)
		if PolicyThreshold(&h, p) == 0 {
			b.Fatal("no threshold")
		}
	}
}

func BenchmarkThreshold64Sigma(b *testing.B)  { benchmarkThreshold64(b, ModeSigma) }
func BenchmarkThreshold64Interp(b *testing.B) { benchmarkThreshold64(b, ModeInterp) }

// FuzzSlots: any bytes a hostile region holds as syscall slots decode,
// merge and give thresholds and quantiles without a panic, quantiles
// non-decreasing in q, and every threshold non-zero once the window holds
// the warm-up.
func FuzzSlots(f *testing.F) {
	var s Slot
	for i := 0; i < 1000; i++ {
		s.Record(uint64(i*i), i%7 == 0, 8)
	}
	b := make([]byte, SlotSize)
	EncodeSlot(b, &s)
	f.Add(b, uint64(0), uint32(0))
	f.Add(append(b, b...), PolicyWord(ModeInterp, 990_000, 1500), uint32(ModeQuantile))
	f.Add(make([]byte, SlotSize), PolicyWord(ModeSigma, 10_000, 0), uint32(7))
	f.Fuzz(func(t *testing.T, raw []byte, word uint64, gmode uint32) {
		var slots []Slot
		for len(raw) >= SlotSize && len(slots) < 8 {
			var s Slot
			DecodeSlot(raw, &s)
			slots = append(slots, s)
			raw = raw[SlotSize:]
		}
		h := MergeSlots(slots)
		var last uint64
		for _, q := range []uint32{1, 500_000, 990_000, 999_000, 999_999} {
			v := h.Quantile(q, true)
			if v < last {
				t.Fatalf("quantile %d = %d below the previous %d", q, v, last)
			}
			last = v
		}
		p := PolicyOf(Global{Mode: gmode, Warmup: 1}, word)
		th := PolicyThreshold(&h, p)
		n := h.Count()
		if p.Mode != ModeSigma && n >= 2 && th == 0 {
			t.Fatalf("no threshold with %d samples", n)
		}
	})
}
