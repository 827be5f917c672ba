package errs

import "errors"

// The family. Errors of every kushm package that mean one of these wrap
// it (or a refinement of it), so one errors.Is test serves them all.
var (
	// ErrNotAvailable: what was asked for cannot be had on this machine
	// (a counter, a register, a feature); wrapped with the reason.
	ErrNotAvailable = errors.New("not available on this machine")
	// ErrNotSupported: the hardware, the kernel or kushm cannot do it.
	ErrNotSupported = errors.New("not supported")
	// ErrPermission: the process lacks a privilege (a capability, root,
	// a group) for it.
	ErrPermission = errors.New("permission denied")
	// ErrInvalid: an argument is out of range.
	ErrInvalid = errors.New("invalid argument")
	// ErrSyntax: text (a file of /sys, an allowlist) is malformed.
	ErrSyntax = errors.New("syntax error")
	// ErrBusy: something else holds it (a live producer, a mapped module).
	ErrBusy = errors.New("busy")
	// ErrClosed: used after Close.
	ErrClosed = errors.New("closed")
	// ErrNoSource: what would provide it is absent (no PMU for the event,
	// no msr driver, no powercap).
	ErrNoSource = errors.New("no such source")
	// ErrNotAllowed: a policy refuses it (an MSR not on the allowlist).
	ErrNotAllowed = errors.New("not allowed")
)

// Refine returns a new sentinel with its own text that errors.Is
// matches against itself and against kind (a member of the family, or
// another refinement).
func Refine(kind error, text string) error {
	return &refined{kind: kind, text: text}
}

type refined struct {
	kind error
	text string
}

func (r *refined) Error() string { return r.text }

// Is matches the family member the sentinel refines.
func (r *refined) Is(target error) bool { return errors.Is(r.kind, target) }
