package latencyeval

import (
	"testing"

	"github.com/kushm/kushm/internal/sysstat"
)

// TestGoal is the goal on 1 M-sample streams with the default
// decay: the interpolated quantile mode keeps every stream's outlier rate
// within 2x of the 0.1 % target and is back within 2x less than 100,000
// samples after a ×5 step (and after a ÷5 step); the bucket-bound
// quantile mode never flags more than 2x the target; k·σ misses the
// target by more than 2x on the skewed streams (the reason for the
// change), which the test pins so that a regression of the harness that
// made every mode look good would fail.
func TestGoal(t *testing.T) {
	if testing.Short() {
		t.Skip("1 M samples per stream and mode")
	}
	const n = 1_000_000
	for _, s := range Streams(n) {
		for _, c := range Configs(sysstat.DefaultDecayShift, 1) {
			r := Run(s, c, n, 1)
			t.Logf("%s / %s: stable %s after %s recovery %d", s.Name, c.Name, Pct(r.StableRate), Pct(r.AfterRate), r.Recovery)
			switch c.Global.Mode {
			case sysstat.ModeInterp:
				if !Within2x(r.StableRate, Target) {
					t.Errorf("%s / %s: stable rate %s", s.Name, c.Name, Pct(r.StableRate))
				}
				if s.Step > 0 && (r.Recovery < 0 || r.Recovery >= 100_000 || !Within2x(r.AfterRate, Target)) {
					t.Errorf("%s / %s: recovery %d, after-step rate %s", s.Name, c.Name, r.Recovery, Pct(r.AfterRate))
				}
			case sysstat.ModeQuantile:
				if r.StableRate > 2*Target || (s.Step > 0 && r.AfterRate > 2*Target) {
					t.Errorf("%s / %s: rate %s / %s above 2x", s.Name, c.Name, Pct(r.StableRate), Pct(r.AfterRate))
				}
			case sysstat.ModeSigma:
				if s.Name[:3] != "Par" && Within2x(r.StableRate, Target) {
					t.Errorf("%s / %s: k·σ within 2x (%s): the streams lost their skew", s.Name, c.Name, Pct(r.StableRate))
				}
			}
		}
	}
}

func TestRunDeterministic(t *testing.T) {
	s := Streams(20000)[0]
	c := Configs(8, 2)[2]
	a, b := Run(s, c, 20000, 7), Run(s, c, 20000, 7)
	for i := range a.Outliers {
		if a.Outliers[i] != b.Outliers[i] {
			t.Fatalf("decision %d differs between two runs", i)
		}
	}
}
