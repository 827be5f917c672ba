package errs

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/sys"
)

// Unavailable says, as data, why something (a preset, a register, a
// feature) cannot be had on this machine. pmu, msr, the provider, the
// client and (through the info section) the kernel module share it; the
// sentence a person reads is composed in one place, Error.
//
// It matches ErrNotAvailable and its Kind with errors.Is, and unwraps to
// Err.
type Unavailable struct {
	// What cannot be had: a preset or register name ("PAPI_L3_TCM",
	// "TSC on cpu 3", "memory-controller traffic").
	What string
	// Source is what tried: one of abi.InfoSource* ("perf", "msr",
	// "perf-msr", "powercap", "config"), or "" when unknown.
	Source string
	// Kind says how it failed: ErrPermission, ErrNotSupported,
	// ErrNoSource, ErrNotAllowed or a refinement of one of them (nil: not
	// available, nothing more precise).
	Kind error
	// Cause completes "WHAT: not available on this machine, because ...".
	Cause string
	// Errno is the failing system call's error number, 0 if none.
	Errno sys.Errno
	// Err is the underlying error; nil when read back from a region.
	Err error
}

// NewUnavailable returns an Unavailable whose cause is format's text and
// whose Errno is the one err wraps, if any.
func NewUnavailable(what, source string, kind, err error, format string, args ...any) *Unavailable {
	u := &Unavailable{What: what, Source: source, Kind: kind, Cause: fmt.Sprintf(format, args...), Err: err}
	var e sys.Errno
	if errors.As(err, &e) {
		u.Errno = e
	}
	return u
}

// Error is the sentence: "WHAT: not available on this machine, because
// CAUSE".
func (u Unavailable) Error() string { return u.What + ": " + u.Reason() }

// Reason is the sentence without its subject: "not available on this
// machine, because CAUSE" (a table's column when the row names WHAT).
func (u Unavailable) Reason() string {
	return ErrNotAvailable.Error() + ", because " + u.Cause
}

// Is matches ErrNotAvailable and Kind (and what Kind refines).
func (u Unavailable) Is(target error) bool {
	return target == ErrNotAvailable || (u.Kind != nil && errors.Is(u.Kind, target))
}

func (u Unavailable) Unwrap() error { return u.Err }

// kinds pairs the info section's words with the family, most precise
// first.
var kinds = []struct {
	name string
	err  error
}{
	{abi.InfoKindPermission, ErrPermission},
	{abi.InfoKindNotAllowed, ErrNotAllowed},
	{abi.InfoKindNoSource, ErrNoSource},
	{abi.InfoKindNotSupported, ErrNotSupported},
}

// KindName is the info section's word for u.Kind (abi.InfoKind*).
func (u Unavailable) KindName() string {
	for _, k := range kinds {
		if u.Kind != nil && errors.Is(u.Kind, k.err) {
			return k.name
		}
	}
	return abi.InfoKindNotAvailable
}

// kindOf is the family member of an info section kind word (nil for
// "not-available" and words it does not know).
func kindOf(name string) error {
	for _, k := range kinds {
		if k.name == name {
			return k.err
		}
	}
	return nil
}

// Entry is u as the info section stores it.
func (u Unavailable) Entry() abi.InfoEntry {
	return abi.InfoEntry{What: u.What, Source: u.Source, Kind: u.KindName(), Errno: uint32(u.Errno), Cause: u.Cause}
}

// FromEntry is the Unavailable an info section entry describes.
func FromEntry(e abi.InfoEntry) *Unavailable {
	return &Unavailable{What: e.What, Source: e.Source, Kind: kindOf(e.Kind), Cause: e.Cause, Errno: sys.Errno(e.Errno)}
}

// unavailableJSON is Unavailable in JSON: name and reason (the cause) as
// before, and the data beside them.
type unavailableJSON struct {
	Name   string `json:"name"`
	Source string `json:"source,omitempty"`
	Kind   string `json:"kind"`
	Errno  uint32 `json:"errno,omitempty"`
	Reason string `json:"reason"`
}

// MarshalJSON writes {"name", "source", "kind", "errno", "reason"}.
func (u Unavailable) MarshalJSON() ([]byte, error) {
	return json.Marshal(unavailableJSON{Name: u.What, Source: u.Source, Kind: u.KindName(), Errno: uint32(u.Errno), Reason: u.Cause})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (u *Unavailable) UnmarshalJSON(b []byte) error {
	var j unavailableJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*u = *FromEntry(abi.InfoEntry{What: j.Name, Source: j.Source, Kind: j.Kind, Errno: j.Errno, Cause: j.Reason})
	return nil
}
