// Package errs defines kushm's sentinel errors once, as cilium/ebpf's
// internal.ErrNotSupported does: the public packages re-export them
// (pmu.ErrNotSupported, msr.ErrNotSupported, tracker.ErrNotSupported and
// userside/bpfrt.ErrNotSupported are the same value), so errors.Is
// matches across packages.
//
// A package that needs its own text for a member of the family (the
// module loader's "permission denied: loading modules needs root") makes a
// refinement with Refine: its own error value, with its own text, that
// errors.Is also matches against the family member.
//
// Nothing here holds resources; every value is immutable and safe for
// concurrent use.
package errs
