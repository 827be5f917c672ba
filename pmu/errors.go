package pmu

import (
	"errors"
	"fmt"

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
	ErrNoPMU = errors.New("no such PMU")
	// ErrNotSupported: the PMU exists but cannot count this event, or not
	// for this kind of target (uncore events per process).
	ErrNotSupported = errs.ErrNotSupported
)

// UnavailableError says why a preset cannot be counted.
type UnavailableError struct {
	Preset PresetID
	// Kind is ErrPermission, ErrNoPMU, ErrNotSupported or ErrNotAvailable.
	Kind error
	// Reason completes "not available on this machine, because ...".
	Reason string
	// Err is the underlying error (often a syscall errno), or nil.
	Err error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("%s: not available on this machine, because %s", e.Preset, e.Reason)
}

// Is matches ErrNotAvailable and e.Kind.
func (e *UnavailableError) Is(target error) bool {
	return target == ErrNotAvailable || target == e.Kind
}

func (e *UnavailableError) Unwrap() error { return e.Err }

func unavailable(p PresetID, kind error, err error, format string, args ...any) *UnavailableError {
	return &UnavailableError{Preset: p, Kind: kind, Reason: fmt.Sprintf(format, args...), Err: err}
}
