package interp

import (
	"errors"
	"fmt"
)

// Run-time sentinels, shared by both engines (userside/bpfrt re-exports
// them): a run that goes wrong stops with a *RuntimeError wrapping one.
var (
	ErrOutOfBounds = errors.New("memory access out of bounds")
	ErrMisaligned  = errors.New("misaligned atomic access")
	ErrBudget      = errors.New("instruction budget exhausted")
	ErrCallDepth   = errors.New("call depth exceeded")
	ErrHelper      = errors.New("helper failed")
	ErrInternal    = errors.New("internal interpreter error")
)

// RuntimeError is why a run stopped early.
type RuntimeError struct {
	PC     int // instruction index, -1 if unknown
	Err    error
	Detail string
}

func (e *RuntimeError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("run: instruction %d: %v", e.PC, e.Err)
	}
	return fmt.Sprintf("run: instruction %d: %v: %s", e.PC, e.Err, e.Detail)
}

// Unwrap returns the sentinel.
func (e *RuntimeError) Unwrap() error { return e.Err }
