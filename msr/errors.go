package msr

import (
	"errors"
	"fmt"

	"github.com/kushm/kushm/internal/errs"
)

// Sentinel errors. ErrNotAvailable, ErrPermission, ErrNotSupported and
// ErrSyntax are kushm's one family (internal/errs): pmu's are the same
// values. Every reason an entry cannot be read is an
// *UnavailableError matching ErrNotAvailable and one of the more precise
// sentinels.
var (
	// ErrNotAvailable: no source can read the entry on this machine.
	ErrNotAvailable = errs.ErrNotAvailable
	// ErrNotAllowed: the address is not on the allowlist (or a write).
	ErrNotAllowed = errors.New("MSR not on the allowlist")
	// ErrPermission: the source exists but the process may not read it
	// (CAP_SYS_RAWIO for /dev/cpu/N/msr, root for energy_uj).
	ErrPermission = errs.ErrPermission
	// ErrNotSupported: the CPU does not implement the register (rdmsr
	// faulted: EIO), or the source has no such event.
	ErrNotSupported = errs.ErrNotSupported
	// ErrNoSource: the source is absent (no msr driver, no msr PMU, no
	// powercap).
	ErrNoSource = errors.New("no such source")
	// ErrSyntax: malformed allowlist or sysfs content.
	ErrSyntax = errs.ErrSyntax
)

// UnavailableError says why an entry cannot be read on a CPU.
type UnavailableError struct {
	ID  ID
	CPU int
	// Kind is one of the sentinels above.
	Kind error
	// Reason completes "not available on this machine, because ...".
	Reason string
	Err    error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("%s on cpu %d: not available on this machine, because %s", e.ID, e.CPU, e.Reason)
}

// Is matches ErrNotAvailable and Kind.
func (e *UnavailableError) Is(target error) bool {
	return target == ErrNotAvailable || target == e.Kind
}

func (e *UnavailableError) Unwrap() error { return e.Err }

func unavailable(id ID, cpu int, kind, err error, format string, args ...any) *UnavailableError {
	return &UnavailableError{ID: id, CPU: cpu, Kind: kind, Reason: fmt.Sprintf(format, args...), Err: err}
}
