package msr

import (
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
	// It refines errs.ErrNotAllowed.
	ErrNotAllowed = errs.Refine(errs.ErrNotAllowed, "MSR not on the allowlist")
	// ErrPermission: the source exists but the process may not read it
	// (CAP_SYS_RAWIO for /dev/cpu/N/msr, root for energy_uj).
	ErrPermission = errs.ErrPermission
	// ErrNotSupported: the CPU does not implement the register (rdmsr
	// faulted: EIO), or the source has no such event.
	ErrNotSupported = errs.ErrNotSupported
	// ErrNoSource: the source is absent (no msr driver, no msr PMU, no
	// powercap).
	ErrNoSource = errs.ErrNoSource
	// ErrSyntax: malformed allowlist or sysfs content.
	ErrSyntax = errs.ErrSyntax
)

// UnavailableError says why an entry cannot be read on a CPU: What is
// "NAME on cpu N", Source the source that refused (abi.InfoSourceMSR,
// InfoSourcePerfMSR, InfoSourcePowercap; InfoSourceMSR for every source
// at once), Kind one of the sentinels above. It is kushm's one
// Unavailable type (internal/errs), shared with pmu, the provider and the
// client.
type UnavailableError = errs.Unavailable

func unavailable(id ID, cpu int, source string, kind, err error, format string, args ...any) *UnavailableError {
	return errs.NewUnavailable(fmt.Sprintf("%s on cpu %d", id, cpu), source, kind, err, format, args...)
}
