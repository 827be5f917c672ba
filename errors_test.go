package kushm

import (
	"errors"
	"fmt"
	"testing"

	"github.com/kushm/kushm/internal/errs"
	"github.com/kushm/kushm/internal/modload"
	"github.com/kushm/kushm/internal/sysfsev"
	"github.com/kushm/kushm/msr"
	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/tracker"
	"github.com/kushm/kushm/userside/bpfrt"
	"github.com/kushm/kushm/userside/provider"
)

// TestSentinelFamily: the sentinels are defined once (internal/errs) and
// re-exported, so errors.Is matches an error of one package against
// another package's sentinel; refinements keep their own text and match
// the family member too.
func TestSentinelFamily(t *testing.T) {
	same := []struct {
		name string
		got  error
		want error
	}{
		{"pmu.ErrNotSupported", pmu.ErrNotSupported, errs.ErrNotSupported},
		{"msr.ErrNotSupported", msr.ErrNotSupported, errs.ErrNotSupported},
		{"tracker.ErrNotSupported", tracker.ErrNotSupported, errs.ErrNotSupported},
		{"bpfrt.ErrNotSupported", bpfrt.ErrNotSupported, errs.ErrNotSupported},
		{"pmu.ErrPermission", pmu.ErrPermission, errs.ErrPermission},
		{"msr.ErrPermission", msr.ErrPermission, errs.ErrPermission},
		{"pmu.ErrNotAvailable", pmu.ErrNotAvailable, errs.ErrNotAvailable},
		{"msr.ErrNotAvailable", msr.ErrNotAvailable, errs.ErrNotAvailable},
		{"tracker.ErrInvalid", tracker.ErrInvalid, errs.ErrInvalid},
		{"bpfrt.ErrInvalid", bpfrt.ErrInvalid, errs.ErrInvalid},
		{"msr.ErrSyntax", msr.ErrSyntax, errs.ErrSyntax},
	}
	for _, s := range same {
		if s.got != s.want {
			t.Errorf("%s is not the family's value", s.name)
		}
	}
	// An error of one package matches another's sentinel.
	bpfErr := fmt.Errorf("create map of type 99: %w", bpfrt.ErrNotSupported)
	for _, target := range []error{pmu.ErrNotSupported, msr.ErrNotSupported, tracker.ErrNotSupported} {
		if !errors.Is(bpfErr, target) {
			t.Errorf("%v does not match %v", bpfErr, target)
		}
	}
	refined := []struct {
		name   string
		err    error
		family error
		text   string
	}{
		{"modload.ErrPermission", modload.ErrPermission, pmu.ErrPermission, "permission denied: loading modules needs root (CAP_SYS_MODULE)"},
		{"modload.ErrBusy", modload.ErrBusy, errs.ErrBusy, ""},
		{"provider.ErrBusy", provider.ErrBusy, errs.ErrBusy, "region in use by a running producer"},
		{"provider.ErrConfig", provider.ErrConfig, errs.ErrInvalid, "invalid configuration"},
		{"tracker.ErrClosed", tracker.ErrClosed, errs.ErrClosed, "tracker closed"},
		{"sysfsev.ErrSyntax", sysfsev.ErrSyntax, msr.ErrSyntax, "invalid sysfs PMU description"},
		{"bpfrt.ErrNoData", bpfrt.ErrNoData, pmu.ErrNotAvailable, "not available"},
	}
	for _, r := range refined {
		err := fmt.Errorf("doing something: %w", r.err)
		if !errors.Is(err, r.err) || !errors.Is(err, r.family) {
			t.Errorf("%s: %v does not match itself and %v", r.name, err, r.family)
		}
		if r.text != "" && r.err.Error() != r.text {
			t.Errorf("%s: text %q, want %q", r.name, r.err, r.text)
		}
	}
	// Distinct members stay distinct.
	if errors.Is(modload.ErrPermission, errs.ErrNotSupported) || errors.Is(provider.ErrBusy, modload.ErrBusy) {
		t.Error("a refinement matches a sentinel it does not refine")
	}
}
