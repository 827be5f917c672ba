package sysstat

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/kushm/kushm/internal/abi"
)

func TestISqrt(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for i := 0; i < 100000; i++ {
		x := rng.Uint64() >> rng.IntN(64)
		r := ISqrt(x)
		// r*r <= x < (r+1)*(r+1), in exact arithmetic.
		rr := new(big.Int).Mul(new(big.Int).SetUint64(r), new(big.Int).SetUint64(r))
		r1 := new(big.Int).SetUint64(r + 1)
		r1.Mul(r1, r1)
		bx := new(big.Int).SetUint64(x)
		if rr.Cmp(bx) > 0 || r1.Cmp(bx) <= 0 {
			t.Fatalf("ISqrt(%d) = %d", x, r)
		}
	}
	if ISqrt(math.MaxUint64) != math.MaxUint32 {
		t.Fatal("ISqrt(max)")
	}
}

func TestSaturation(t *testing.T) {
	if SatAdd(math.MaxUint64, 1) != math.MaxUint64 || SatAdd(2, 3) != 5 {
		t.Fatal("SatAdd")
	}
	if SatMul(1<<32, 1<<32) != math.MaxUint64 || SatMul(3, 5) != 15 {
		t.Fatal("SatMul")
	}
}

// TestAgainstExact: Add, Merge and Threshold against the exact (big
// rational) mean and variance: the integer results stay within the
// rounding the ABI documents (floor of the mean, M2 within a few ulps per
// sample).
func TestAgainstExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	for trial := 0; trial < 200; trial++ {
		slots := make([]abi.SyscallStat, 1+rng.IntN(4))
		var xs []uint64
		for j := range slots {
			for k := 0; k < 1+rng.IntN(100); k++ {
				x := 1000 + uint64(rng.IntN(9000))
				Add(&slots[j], x, false)
				xs = append(xs, x)
			}
		}
		m := Merge(slots)
		var sum uint64
		for _, x := range xs {
			sum += x
		}
		n := uint64(len(xs))
		if m.Count != n || m.SumNs != sum || m.MeanNs != sum/n {
			t.Fatalf("merge count/sum/mean %d %d %d, want %d %d %d", m.Count, m.SumNs, m.MeanNs, n, sum, sum/n)
		}
		mean := float64(sum) / float64(n)
		var m2 float64
		for _, x := range xs {
			m2 += (float64(x) - mean) * (float64(x) - mean)
		}
		if d := math.Abs(float64(m.M2) - m2); d > 0.02*m2 { // σ within 1 %
			t.Fatalf("M2 %d, exact %.0f", m.M2, m2)
		}
		th := Threshold(&m, 300, 64)
		if n < 64 && th != 0 {
			t.Fatalf("threshold %d during warm-up", th)
		}
		if n >= 64 {
			want := mean + 3*math.Sqrt(m2/float64(n))
			if math.Abs(float64(th)-want) > 0.01*want+2 {
				t.Fatalf("threshold %d, exact %.1f", th, want)
			}
		}
	}
}

// TestMergeSingles: slots of one sample each (every CPU saw one call) must
// merge to the exact M2, not lose the between-slot term.
func TestMergeSingles(t *testing.T) {
	var slots [4]abi.SyscallStat
	for i, x := range []uint64{1000, 4000, 7000, 10000} {
		Add(&slots[i], x, false)
	}
	m := Merge(slots[:])
	// mean 5500; Σ(x-mean)² = 2·(4500² + 1500²) = 45 000 000.
	if m.M2 != 45_000_000 || m.MeanNs != 5500 || m.Count != 4 {
		t.Fatalf("merge of singles: %+v", m)
	}
}

func TestCrossTermExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 3))
	for i := 0; i < 100000; i++ {
		d := rng.Uint64() >> (32 + rng.IntN(33))
		na := 1 + rng.Uint64()>>(1+rng.IntN(63))
		nb := 1 + rng.Uint64()>>(1+rng.IntN(63))
		n := na + nb
		if n < na {
			continue
		}
		want := new(big.Int).Mul(new(big.Int).SetUint64(d), new(big.Int).SetUint64(d))
		want.Mul(want, new(big.Int).SetUint64(na))
		want.Mul(want, new(big.Int).SetUint64(nb))
		want.Quo(want, new(big.Int).SetUint64(n))
		got := CrossTerm(d, na, nb, n)
		if want.IsUint64() {
			if got != want.Uint64() {
				t.Fatalf("CrossTerm(%d,%d,%d) = %d, want %s", d, na, nb, got, want)
			}
		} else if got != math.MaxUint64 {
			t.Fatalf("CrossTerm(%d,%d,%d) = %d, want saturation", d, na, nb, got)
		}
	}
}
