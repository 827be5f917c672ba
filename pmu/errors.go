package pmu

import (
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/errs"
)

// Sentinel errors. ErrNotAvailable, ErrPermission and ErrNotSupported are
// kushm's one family (internal/errs): msr's, tracker's and bpfrt's are the
// same values. Every reason a preset cannot be counted is an
// *UnavailableError, which matches ErrNotAvailable and, more precisely,
// one of ErrPermission, ErrNoPMU or ErrNotSupported.
var (
	// ErrNotAvailable: the preset cannot be counted on this machine.
	ErrNotAvailable = errs.ErrNotAvailable
	// ErrPermission: perf_event_paranoid / missing CAP_PERFMON (EACCES, EPERM).
	ErrPermission = errs.ErrPermission
	// ErrNoPMU: the PMU the event needs does not exist here (a VM without a
	// virtual PMU, an uncore PMU the driver does not expose).
	// It refines errs.ErrNoSource.
	ErrNoPMU = errs.Refine(errs.ErrNoSource, "no such PMU")
	// ErrNotSupported: the PMU exists but cannot count this event, or not
	// for this kind of target (uncore events per process).
	ErrNotSupported = errs.ErrNotSupported
)

// UnavailableError says why a preset cannot be counted: What is the
// preset's name, Source "perf", Kind one of ErrPermission, ErrNoPMU,
// ErrNotSupported or nil. It is kushm's one Unavailable type
// (internal/errs), shared with msr, the provider and the client.
type UnavailableError = errs.Unavailable

func unavailable(p PresetID, kind error, err error, format string, args ...any) *UnavailableError {
	return errs.NewUnavailable(p.String(), abi.InfoSourcePerf, kind, err, format, args...)
}
