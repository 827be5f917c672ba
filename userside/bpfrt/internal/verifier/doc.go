// Package verifier is the checker of userside/bpfrt: it decodes raw eBPF,
// validates every opcode and field, keeps jumps inside their function,
// refuses fall-through past the end, proves every register initialised
// before it is read, checks helper arguments against their signatures,
// and tracks context and stack pointers with constant offsets. Its output
// (internal/isa instructions) is what both engines run: accesses it
// proved inside the stack frame or at constant context offsets get their
// own ops, every other access is left to the engines' run-time checks.
//
// Errors: a refusal is a *VerifierError (the instruction and the reason)
// wrapping ErrInvalidProgram. The checker keeps nothing after Check
// returns.
package verifier
