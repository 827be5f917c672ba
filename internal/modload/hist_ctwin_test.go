package modload

// The C twin of the syscall slots' arithmetic (kmod/kushm_hist.h: the
// histogram, the decay, the Welford update, the merge and both threshold
// modes) against package sysstat, bit for bit, on random and edge vectors.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/kushm/kushm/internal/sysstat"
)

// TestCHistIndex: every bucket bound, its neighbours, 0, 2^64-1 and random
// latencies land in the same bucket in C and Go.
func TestCHistIndex(t *testing.T) {
	bin := buildUtest(t)
	vals := []uint64{0, 1, 2, 3, math.MaxUint64, math.MaxUint64 - 1, 1 << 63}
	for b := 0; b < sysstat.HistOverflow; b++ {
		bd := sysstat.HistBound(b)
		vals = append(vals, bd, bd+1, max(bd, 1)-1)
	}
	rng := rand.New(rand.NewPCG(21, 22))
	for i := 0; i < 20000; i++ {
		vals = append(vals, rng.Uint64()>>rng.IntN(64))
	}
	var in strings.Builder
	for _, v := range vals {
		fmt.Fprintf(&in, "%d\n", v)
	}
	cmd := exec.Command(bin, "hidx")
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("utest hidx: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(vals) {
		t.Fatalf("%d results for %d values", len(lines), len(vals))
	}
	for i, v := range vals {
		if want := strconv.Itoa(sysstat.HistIndex(v)); lines[i] != want {
			t.Fatalf("index of %d: C %s, Go %s", v, lines[i], want)
		}
	}
}

type histSample struct {
	x   uint64
	out bool
	n   int
}

type histCase struct {
	g     sysstat.Global
	word  uint64
	h     uint32
	slots [][]histSample
}

func (c histCase) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %d %d %d %d %d %d", c.g.Mode, c.g.Kx100, c.g.Warmup, c.g.Qppm, c.g.FactorX1000, c.word, c.h)
	for _, s := range c.slots {
		b.WriteString(" |")
		for _, x := range s {
			fmt.Fprintf(&b, " %d", x.x)
			if x.out {
				b.WriteByte('!')
			}
			if x.n != 1 {
				fmt.Fprintf(&b, "*%d", x.n)
			}
		}
	}
	return b.String()
}

func slotLine(st [10]uint64, buckets func(int) uint64) string {
	var b strings.Builder
	for i, v := range st {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatUint(v, 10))
	}
	for i := 0; i < sysstat.HistBuckets; i++ {
		if c := buckets(i); c != 0 {
			fmt.Fprintf(&b, " b%d=%d", i, c)
		}
	}
	return b.String()
}

// goResult computes what utest hist prints for c, with package sysstat.
// Both sides take H as given (the kfunc validates it before recording).
func (c histCase) goResult() string {
	slots := make([]sysstat.Slot, len(c.slots))
	var lines []string
	for i, ss := range c.slots {
		for _, x := range ss {
			for k := 0; k < x.n; k++ {
				slots[i].Record(x.x, x.out, c.h)
			}
		}
		s := &slots[i]
		w := sysstat.Words(&s.Stat)
		lines = append(lines, slotLine([10]uint64{w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], s.Total, s.Decays},
			func(b int) uint64 { return uint64(s.Buckets[b]) }))
	}
	m := sysstat.MergeSlots(slots)
	p := sysstat.PolicyOf(c.g, c.word)
	w := sysstat.Words(&m.Stat)
	lines = append(lines, "merged "+slotLine([10]uint64{w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], m.Total, m.Decays},
		func(b int) uint64 { return m.Buckets[b] })+
		fmt.Sprintf(" policy %d %d %d %d %d threshold %d", p.Mode, p.Kx100, p.Qppm, p.FactorX1000, p.Warmup, sysstat.PolicyThreshold(&m, p)))
	return strings.Join(lines, "\n")
}

// TestCHistMatchesGo: random slots (lognormal and edge latencies, outlier
// flags, decay shifts), merged and thresholded under random policies
// (every mode, out-of-range fields), and the edges: 0 ns, 2^64-1 ns,
// bucket bounds and their successors, a saturated bucket, a slot halved
// to an empty window.
func TestCHistMatchesGo(t *testing.T) {
	bin := buildUtest(t)
	rng := rand.New(rand.NewPCG(31, 32))
	pick := func(vals ...uint32) uint32 { return vals[rng.IntN(len(vals))] }
	edge := func() uint64 {
		switch rng.IntN(6) {
		case 0:
			return 0
		case 1:
			return math.MaxUint64 - uint64(rng.IntN(2))
		case 2:
			return sysstat.HistBound(rng.IntN(sysstat.HistOverflow))
		case 3:
			return sysstat.HistBound(rng.IntN(sysstat.HistOverflow)) + 1
		}
		return rng.Uint64() >> rng.IntN(64)
	}
	var cases []histCase
	for i := 0; i < 400; i++ {
		c := histCase{
			g: sysstat.Global{Mode: pick(0, 1, 2, 3, 4, 99), Kx100: pick(0, 150, 300, 10000, 10001),
				Warmup: pick(0, 1, 10, 64, 1<<21), Qppm: pick(0, 1, 500000, 990000, 999000, 999999, 1000000),
				FactorX1000: pick(0, 1, 500, 1000, 2500, 1000000, 1000001)},
			word: sysstat.PolicyWord(pick(0, 1, 2, 3, 7), pick(0, 250, 900000, 999900, 1<<27), pick(0, 800, 1200, 1<<31)),
			h:    pick(4, 5, 6, 8, 13, 40, 63, 64, 200),
		}
		for j := 0; j < 1+rng.IntN(6); j++ {
			var ss []histSample
			for k := rng.IntN(40); k > 0; k-- {
				x := histSample{x: uint64(math.Exp(rng.NormFloat64()*1.5 + 9)), out: rng.IntN(20) == 0, n: 1}
				if rng.IntN(8) == 0 {
					x.x = edge()
				}
				if rng.IntN(10) == 0 {
					x.n = 1 + rng.IntN(300)
				}
				ss = append(ss, x)
			}
			c.slots = append(c.slots, ss)
		}
		cases = append(cases, c)
	}
	// Saturation: a bucket at 65535 halves the slot (h = 40: no periodic decay).
	cases = append(cases, histCase{h: 40, g: sysstat.Global{Mode: 2}, slots: [][]histSample{
		{{x: 5000, n: 65535}, {x: 7, n: 3}, {x: 5000, out: true, n: 2}},
		{{x: 0, n: 65536}, {x: math.MaxUint64, n: 65537}},
	}})
	// A slot halved to an empty window, then merged with live ones.
	cases = append(cases, histCase{h: 4, g: sysstat.Global{Mode: 3, Warmup: 1}, slots: [][]histSample{
		{{x: 100, out: true, n: 16}},
		{{x: 1000, n: 1}},
		{{x: 2000, n: 40}},
	}})
	var in strings.Builder
	for _, c := range cases {
		in.WriteString(c.line())
		in.WriteByte('\n')
	}
	cmd := exec.Command(bin, "hist")
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("utest hist: %v", err)
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	var want []string
	for _, c := range cases {
		want = append(want, strings.Split(c.goResult(), "\n")...)
	}
	if len(got) != len(want) {
		t.Fatalf("C printed %d lines, Go %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("line %d:\n C  %s\n Go %s", i, got[i], want[i])
		}
	}
}
