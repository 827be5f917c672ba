// Package latencyeval is the evaluation harness of kushm's adaptive
// syscall-latency thresholds (docs/latency-thresholds.md): it feeds
// synthetic latency streams through sysstat.Sim, the Go model of
// bpf_kushm_record_latency that the kernel's C twin is checked against bit
// for bit, in both threshold modes, and measures how often each flags an
// outlier against the configured target, and how fast it follows a
// changed baseline.
package latencyeval

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/kushm/kushm/internal/sysstat"
)

// Stream is a named, seeded synthetic latency stream.
type Stream struct {
	Name string
	// Step is the sample index where the baseline changes (0: never).
	Step int
	gen  func(rng *rand.Rand, i int) uint64
}

func lognormal(rng *rand.Rand, median, sigma float64) uint64 {
	return uint64(median * math.Exp(sigma*rng.NormFloat64()))
}

// Streams are the evaluation's streams of n samples each.
func Streams(n int) []Stream {
	return []Stream{
		{Name: "lognormal (median 2 µs, σ_ln 0.5)", gen: func(rng *rand.Rand, _ int) uint64 {
			return lognormal(rng, 2000, 0.5)
		}},
		{Name: "bimodal (95 % at 1 µs, 5 % at 200 µs, σ_ln 0.1 each)", gen: func(rng *rand.Rand, _ int) uint64 {
			if rng.IntN(100) < 5 {
				return lognormal(rng, 200_000, 0.1)
			}
			return lognormal(rng, 1000, 0.1)
		}},
		{Name: "Pareto tail (x_m 1 µs, α 1.5)", gen: func(rng *rand.Rand, _ int) uint64 {
			u := 1 - rng.Float64() // (0, 1]
			return uint64(1000 / math.Pow(u, 1/1.5))
		}},
		{Name: "step ÷5 halfway (lognormal, median 10 µs → 2 µs, σ_ln 0.3)", Step: n / 2, gen: func(rng *rand.Rand, i int) uint64 {
			m := 10000.0
			if i >= n/2 {
				m /= 5
			}
			return lognormal(rng, m, 0.3)
		}},
		{Name: "step ×5 halfway (lognormal, median 2 µs → 10 µs, σ_ln 0.3)", Step: n / 2, gen: func(rng *rand.Rand, i int) uint64 {
			m := 2000.0
			if i >= n/2 {
				m *= 5
			}
			return lognormal(rng, m, 0.3)
		}},
	}
}

// Samples are the first n latencies of s with seed: the stream Run
// feeds, for feeding the same one elsewhere (the kernel, the userspace
// runtime).
func (s Stream) Samples(n int, seed uint64) []uint64 {
	rng := rand.New(rand.NewPCG(seed, 0x6b7573686d))
	xs := make([]uint64, n)
	for i := range xs {
		xs[i] = s.gen(rng, i)
	}
	return xs
}

// Config is one threshold configuration under test.
type Config struct {
	Name   string
	Global sysstat.Global
	CPUs   int // samples go round-robin to this many CPUs' slots (≥ 1)
}

// Result is one stream through one configuration.
type Result struct {
	Stream, Config string
	Samples        int
	Target         float64
	// StableRate is the outlier rate over the stable part: samples
	// [Skip, end), or [Skip, Step) for a stream with a step.
	StableRate float64
	// AfterRate is the rate over [Step+AfterSkip, end) (step streams).
	AfterRate float64
	// Recovery is the number of samples after the step until the rate is
	// back within 2x of the target: the smallest t (a multiple of
	// Granule) such that every later Window-sample window from step+t on
	// (back to back, to the end) has a rate within 2x; -1: never.
	Recovery int
	Outliers []bool `json:"-"`
}

// Target is the outlier rate the user asks for: 0.1 % (q = 0.999).
const Target = 0.001

// Measurement windows (docs/latency-thresholds.md).
const (
	Skip      = 100_000 // warm-up not counted in the stable rate
	AfterSkip = 200_000 // after the step, the stable part starts here
	Window    = 50_000
	Granule   = 1000
)

// Run feeds n samples of s (seeded) through a Sim configured by c.
func Run(s Stream, c Config, n int, seed uint64) Result {
	cpus := max(c.CPUs, 1)
	sim := sysstat.NewSim(cpus, c.Global)
	out := make([]bool, n)
	for i, x := range s.Samples(n, seed) {
		out[i] = sim.Record(i%cpus, x)
	}
	r := Result{Stream: s.Name, Config: c.Name, Samples: n, Target: Target, Outliers: out, Recovery: -1}
	end := n
	if s.Step > 0 {
		end = s.Step
	}
	r.StableRate = rate(out[min(Skip, end):end])
	if s.Step > 0 {
		r.AfterRate = rate(out[min(s.Step+AfterSkip, n):])
	next:
		for t := 0; s.Step+t+Window <= n; t += Granule {
			for w := s.Step + t; w+Window <= n; w += Window {
				if !within2x(rate(out[w:w+Window]), Target) {
					continue next
				}
			}
			r.Recovery = t
			break
		}
	}
	return r
}

func rate(o []bool) float64 {
	if len(o) == 0 {
		return math.NaN()
	}
	k := 0
	for _, b := range o {
		if b {
			k++
		}
	}
	return float64(k) / float64(len(o))
}

func within2x(rate, target float64) bool {
	return rate >= target/2 && rate <= target*2
}

// Within2x reports whether rate is within a factor 2 of target.
func Within2x(rate, target float64) bool { return within2x(rate, target) }

// Pct formats a rate as a percentage.
func Pct(r float64) string {
	if math.IsNaN(r) {
		return "n/a"
	}
	return fmt.Sprintf("%.3f %%", 100*r)
}

// Configs are the two modes compared, with decay shift h: k·σ with the
// default k = 3, and the 0.999-quantile's bucket bound × 1.0.
func Configs(h uint32, cpus int) []Config {
	return []Config{
		{Name: "k·σ (k = 3)", Global: sysstat.Global{Mode: sysstat.ModeSigma, DecayShift: h}, CPUs: cpus},
		{Name: "quantile (q = 0.999, ×1.0)", Global: sysstat.Global{Mode: sysstat.ModeQuantile, Qppm: 999_000, FactorX1000: 1000, DecayShift: h}, CPUs: cpus},
		{Name: "interpolated quantile (q = 0.999, ×1.0)", Global: sysstat.Global{Mode: sysstat.ModeInterp, Qppm: 999_000, FactorX1000: 1000, DecayShift: h}, CPUs: cpus},
	}
}
