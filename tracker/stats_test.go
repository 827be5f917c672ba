// SPDX-License-Identifier: Apache-2.0

package tracker

import (
	"github.com/kushm/kushm/internal/sysstat"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kushm/kushm/internal/abi"
)

// welford mirrors the kernel's per-CPU integer update (kmod/kushm_kfuncs.c).
func welford(s *abi.SyscallStat, x uint64) {
	cnt := s.Count + 1
	sum := sysstat.SatAdd(s.SumNs, x)
	var meanOld uint64
	if s.Count != 0 {
		meanOld = s.SumNs / s.Count
	}
	meanNew := sum / cnt
	if s.Count != 0 {
		d1, d2 := float64(int64(x-meanOld)), float64(int64(x-meanNew))
		p := d1 * d2
		if p > 0 {
			s.M2 = sysstat.SatAdd(s.M2, uint64(p))
		} else if p < 0 {
			s.M2 -= min(s.M2, uint64(-p))
		}
	}
	s.Count, s.SumNs, s.MeanNs, s.LastNs = cnt, sum, meanNew, x
	if cnt == 1 || x > s.MaxNs {
		s.MaxNs = x
	}
	if cnt == 1 || x < s.MinNs {
		s.MinNs = x
	}
}

func TestISqrt(t *testing.T) {
	for _, x := range []uint64{0, 1, 2, 3, 4, 15, 16, 17, 1 << 40, math.MaxUint64, math.MaxUint64 - 1, 1<<62 - 1} {
		r := ISqrt(x)
		if hi, lo := mulWide(r, r); hi != 0 || lo > x {
			t.Fatalf("ISqrt(%d) = %d: too big", x, r)
		}
		if r1 := r + 1; r1 < 1<<32 && r1*r1 <= x {
			t.Fatalf("ISqrt(%d) = %d: too small", x, r)
		}
	}
}

func mulWide(a, b uint64) (uint64, uint64) {
	hi := uint64(0)
	if a != 0 && b > math.MaxUint64/a {
		hi = 1
	}
	return hi, a * b
}

// TestMergeMatchesSequential: the merged per-CPU slots agree with the
// exact statistics of all samples (mean exact, σ within 1%).
func TestMergeMatchesSequential(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	slots := make([]abi.SyscallStat, 4)
	var xs []float64
	for i := 0; i < 20000; i++ {
		x := uint64(1000 + r.IntN(500))
		if i%100 == 0 {
			x = 20000
		}
		welford(&slots[r.IntN(len(slots))], x)
		xs = append(xs, float64(x))
	}
	m := Merge(slots)
	var sum, ss float64
	for _, x := range xs {
		sum += x
	}
	mean := sum / float64(len(xs))
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	sd := math.Sqrt(ss / float64(len(xs)))
	if m.Count != uint64(len(xs)) || m.MeanNs != uint64(mean) {
		t.Fatalf("count %d mean %d, want %d %v", m.Count, m.MeanNs, len(xs), mean)
	}
	if got := float64(StdDev(m)); math.Abs(got-sd)/sd > 0.01 {
		t.Fatalf("stddev %v, want %v", got, sd)
	}
	if m.MaxNs != 20000 || m.MinNs < 1000 {
		t.Fatalf("min %d max %d", m.MinNs, m.MaxNs)
	}
	th := Threshold(m, 300, 64)
	if want := mean + 3*sd; math.Abs(float64(th)-want)/want > 0.01 {
		t.Fatalf("threshold %d, want about %v", th, want)
	}
}

func TestThresholdWarmup(t *testing.T) {
	var s abi.SyscallStat
	for i := 0; i < 63; i++ {
		welford(&s, 100)
	}
	if th := Threshold(s, 300, 64); th != 0 {
		t.Fatalf("threshold during warm-up = %d, want 0", th)
	}
	welford(&s, 100)
	if th := Threshold(s, 300, 64); th != 100 {
		t.Fatalf("threshold of constant 100 ns = %d, want 100", th)
	}
}

func TestMergeSaturates(t *testing.T) {
	a := abi.SyscallStat{Count: 1, SumNs: 0, M2: math.MaxUint64 - 5}
	b := abi.SyscallStat{Count: 1, SumNs: math.MaxUint64, M2: 10}
	m := Merge([]abi.SyscallStat{a, b})
	if m.M2 != math.MaxUint64 || m.SumNs != math.MaxUint64 || m.Count != 2 {
		t.Fatalf("no saturation: %+v", m)
	}
	if th := Threshold(m, abi.MaxKx100, 2); th < m.MeanNs {
		t.Fatalf("threshold %d below the mean %d", th, m.MeanNs)
	}

}

func TestParseEvent(t *testing.T) {
	b := make([]byte, EventSize)
	b[8] = 0x10
	b[32] = 35
	copy(b[40:], "sleep\x00junk")
	e, err := ParseEvent(b)
	if err != nil || e.Latency != 0x10 || e.NR != 35 || e.Comm != "sleep" {
		t.Fatalf("ParseEvent = %+v, %v", e, err)
	}
	if _, err := ParseEvent(b[:10]); err == nil {
		t.Fatal("short record accepted")
	}
}

func FuzzParseEvent(f *testing.F) {
	f.Add(make([]byte, EventSize))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEvent(b)
		if err == nil && len(e.Comm) > 16 {
			t.Fatalf("comm %q longer than 16", e.Comm)
		}
	})
}

func TestSyscallName(t *testing.T) {
	if SyscallName(35) != "nanosleep" || SyscallName(0) != "read" || SyscallName(9999) != "sys_9999" {
		t.Fatal(SyscallName(35), SyscallName(0))
	}
	if nr, ok := SyscallNumber("nanosleep"); !ok || nr != 35 {
		t.Fatal(nr, ok)
	}
}

// BenchmarkMerge64: merging the slots of a 64-CPU machine, as every
// threshold computation does (goal: well under 1 µs).
func BenchmarkMerge64(b *testing.B) {
	slots := make([]abi.SyscallStat, 64)
	for i := range slots {
		for j := 0; j < 100; j++ {
			welford(&slots[i], uint64(1000+i*10+j))
		}
	}
	b.ResetTimer()
	var th uint64
	for i := 0; i < b.N; i++ {
		th += Threshold(Merge(slots), 300, 64)
	}
	if th == 0 {
		b.Fatal("no threshold")
	}
}
