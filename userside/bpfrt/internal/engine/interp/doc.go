// Package interp is the interpreter engine of userside/bpfrt: a Machine
// runs checked, pre-decoded instructions (internal/isa) with one Go
// switch over their ops, every memory access the checker could not prove
// safe looked up in the Machine's region table, back edges and calls
// charged to a budget, calls bounded by isa.MaxCallDepth. Helpers run
// through the Host.
//
// Errors: Run returns a *RuntimeError wrapping ErrOutOfBounds, ErrBudget,
// ErrCallDepth, ErrMisaligned or ErrHelper (ErrInternal for an op it does
// not know); userside/bpfrt re-exports them. Lifetimes: a Machine belongs
// to one goroutine at a time; its Stack and Regions live as long as it.
package interp
