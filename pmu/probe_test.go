//go:build linux

package pmu

import (
	"errors"
	"strings"
	"testing"
)

func TestProbeThisMachine(t *testing.T) {
	r := Probe(nil)
	if len(r.Presets) != NumPresets {
		t.Fatalf("%d presets probed", len(r.Presets))
	}
	for _, a := range r.Presets {
		t.Logf("%v", a)
		if a.Preset.Software && !a.Available {
			t.Errorf("software preset unavailable: %v", a.Err)
		}
		if !a.Available {
			if !errors.Is(a.Err, ErrNotAvailable) {
				t.Errorf("%s: error %v does not match ErrNotAvailable", a.Preset.Name, a.Err)
			}
			if !strings.Contains(a.Err.Error(), "not available on this machine, because ") {
				t.Errorf("%s: message %q", a.Preset.Name, a.Err)
			}
		}
	}
	if r.System.CorePMU == "" {
		a := r.Presets[PAPI_TOT_CYC]
		if a.Available || !errors.Is(a.Err, ErrNoPMU) {
			t.Fatalf("no core PMU but cycles: %v", a)
		}
		if !strings.Contains(a.Reason, "the kernel has no hardware PMU for this CPU (ENOENT") && !strings.Contains(a.Reason, "(EOPNOTSUPP") {
			t.Errorf("reason %q lacks the errno", a.Reason)
		}
	}
}
