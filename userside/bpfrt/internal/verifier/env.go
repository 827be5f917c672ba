package verifier

import (
	"errors"
	"fmt"

	"github.com/kushm/kushm/userside/bpfrt/internal/isa"
)

// ErrInvalidProgram is what every refusal wraps (userside/bpfrt
// re-exports it).
var ErrInvalidProgram = errors.New("invalid program")

// VerifierError is why a program was refused at load time.
type VerifierError struct {
	PC     int    // instruction (8-byte slot) index, -1 for the whole program
	Insn   string // the instruction, decoded
	Reason string
}

func (e *VerifierError) Error() string {
	if e.PC < 0 {
		return "invalid program: " + e.Reason
	}
	return fmt.Sprintf("invalid program: instruction %d (%s): %s", e.PC, e.Insn, e.Reason)
}

// Unwrap returns ErrInvalidProgram.
func (e *VerifierError) Unwrap() error { return ErrInvalidProgram }

// ArgKind is the type of one helper argument; the checker and the
// runtime enforce it before the helper runs.
type ArgKind uint8

const (
	// ArgScalar is any initialised value.
	ArgScalar ArgKind = iota + 1
	// ArgMap is a map pointer (lddw of a map), proven at load time.
	ArgMap
	// ArgPtr is a pointer the helper checks itself with Call.Bytes.
	ArgPtr
	// ArgMem is a pointer to memory the helper reads; the next argument,
	// ArgSize, is its length. Checked before the call (Call.Mem).
	ArgMem
	// ArgMemOut is like ArgMem, for memory the helper writes.
	ArgMemOut
	// ArgSize is the length of the preceding ArgMem or ArgMemOut.
	ArgSize
)

// HelperSig is what the checker needs of a helper: its name (for
// messages) and its arguments.
type HelperSig struct {
	Name string
	Args []ArgKind
}

// Env is the program's environment as the checker sees it: its helpers
// (by index, ID and name) and its maps (by index).
type Env interface {
	HelperIndex(id int32) (int, bool)
	HelperByName(name string) (int, bool)
	Helper(idx int) HelperSig
	NumMaps() int
	// ArrayBytes is the size of array map i's values area (ok false:
	// not an array map); ArrayBase its address.
	ArrayBytes(i int) (int, bool)
	ArrayBase(i int) uint64
	// MapHandle is the value a program holds for map i (lddw src 1).
	MapHandle(i int) uint64
}

// Result is a checked program: the instructions for the interpreter
// (Insns, with its fused predicate ops), the same before fusion for the
// JIT (Plain), and the functions.
type Result struct {
	Insns []isa.Insn
	Plain []isa.Insn
	Funcs []isa.Func
}

// Options of one check.
type Options struct {
	// Kfuncs names the kfuncs of the program (lddw/call src 2 index it).
	Kfuncs []string
	// MaskShifts accepts out-of-range immediate shifts (RFC 9669 mode).
	MaskShifts bool
}

// Check verifies raw against env and returns the program.
func Check(raw []RawInsn, env Env, o Options) (*Result, error) {
	c := &checker{raw: raw, env: env, res: &Result{}, kfuncs: o.Kfuncs, maskShifts: o.MaskShifts}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c.res, nil
}
