// Package isa is the pre-decoded instruction set shared by the checker and
// the engines of userside/bpfrt: the interpreter switches over these ops and
// the amd64 JIT compiles them. One source of truth for both.
package isa

// Internal, pre-decoded operations. The hot loop switches over these; every
// variant (32/64 bit, immediate/register, static/dynamic memory) is its own
// op so that no decoding happens at run time.
const (
	OpInvalid uint8 = iota

	// ALU64, immediate (K) and register (X).
	OpAdd64K
	OpAdd64X
	OpSub64K
	OpSub64X
	OpMul64K
	OpMul64X
	OpDiv64K
	OpDiv64X
	OpSDiv64K
	OpSDiv64X
	OpOr64K
	OpOr64X
	OpAnd64K
	OpAnd64X
	OpLsh64K
	OpLsh64X
	OpRsh64K
	OpRsh64X
	OpNeg64
	OpMod64K
	OpMod64X
	OpSMod64K
	OpSMod64X
	OpXor64K
	OpXor64X
	OpMov64K
	OpMov64X
	OpMovSX8_64
	OpMovSX16_64
	OpMovSX32_64
	OpArsh64K
	OpArsh64X

	// ALU32.
	OpAdd32K
	OpAdd32X
	OpSub32K
	OpSub32X
	OpMul32K
	OpMul32X
	OpDiv32K
	OpDiv32X
	OpSDiv32K
	OpSDiv32X
	OpOr32K
	OpOr32X
	OpAnd32K
	OpAnd32X
	OpLsh32K
	OpLsh32X
	OpRsh32K
	OpRsh32X
	OpNeg32
	OpMod32K
	OpMod32X
	OpSMod32K
	OpSMod32X
	OpXor32K
	OpXor32X
	OpMov32K
	OpMov32X
	OpMovSX8_32
	OpMovSX16_32
	OpArsh32K
	OpArsh32X

	// Byte order (little-endian host).
	OpTrunc16
	OpTrunc32
	OpNop
	OpBswap16
	OpBswap32
	OpBswap64

	// Jumps. Forward conditional jumps only; backward jumps use opBack.
	OpJa
	OpJeq64K
	OpJeq64X
	OpJgt64K
	OpJgt64X
	OpJge64K
	OpJge64X
	OpJset64K
	OpJset64X
	OpJne64K
	OpJne64X
	OpJsgt64K
	OpJsgt64X
	OpJsge64K
	OpJsge64X
	OpJlt64K
	OpJlt64X
	OpJle64K
	OpJle64X
	OpJslt64K
	OpJslt64X
	OpJsle64K
	OpJsle64X
	OpJeq32K
	OpJeq32X
	OpJgt32K
	OpJgt32X
	OpJge32K
	OpJge32X
	OpJset32K
	OpJset32X
	OpJne32K
	OpJne32X
	OpJsgt32K
	OpJsgt32X
	OpJsge32K
	OpJsge32X
	OpJlt32K
	OpJlt32X
	OpJle32K
	OpJle32X
	OpJslt32K
	OpJslt32X
	OpJsle32K
	OpJsle32X
	// opBack is a backward jump (conditional or not): it charges the
	// back-edge budget, then evaluates the condition held in size.
	OpBack

	OpCall      // helper or kfunc: jt indexes Program.helpers
	OpCallLocal // bpf-to-bpf: jt is the target pc, off the callee's function index
	OpExit

	// Memory, checked at run time against the VM's region table.
	OpLdxB
	OpLdxH
	OpLdxW
	OpLdxDW
	OpLdxSB
	OpLdxSH
	OpLdxSW
	OpStB
	OpStH
	OpStW
	OpStDW
	OpStxB
	OpStxH
	OpStxW
	OpStxDW
	OpAtomic

	// Memory at an offset the checker proved constant from the context
	// pointer: only the context length is checked (imm = off+size).
	OpLdxCtxB
	OpLdxCtxH
	OpLdxCtxW
	OpLdxCtxDW
	OpLdxCtxSB
	OpLdxCtxSH
	OpLdxCtxSW
	OpStCtxB
	OpStCtxH
	OpStCtxW
	OpStCtxDW
	OpStxCtxB
	OpStxCtxH
	OpStxCtxW
	OpStxCtxDW

	// Memory at an offset the checker proved inside the current stack
	// frame: no run-time check at all (off is relative to the frame top).
	OpLdxStkB
	OpLdxStkH
	OpLdxStkW
	OpLdxStkDW
	OpLdxStkSB
	OpLdxStkSH
	OpLdxStkSW
	OpStStkB
	OpStStkH
	OpStStkW
	OpStStkDW
	OpStxStkB
	OpStxStkH
	OpStxStkW
	OpStxStkDW

	// Fused: load u64 from a constant context offset (off) into dst, then
	// a forward 64-bit conditional jump on dst against imm to jt (the
	// shape of every tracing-filter predicate). One op per condition, in
	// opJeq64K order.
	OpFJeq
	OpFJgt
	OpFJge
	OpFJset
	OpFJne
	OpFJsgt
	OpFJsge
	OpFJlt
	OpFJle
	OpFJslt
	OpFJsle

	// opF3: load u64 from ctx+off into dst, set src = imm (a constant
	// clang puts in a register for the compare), then a forward 64-bit
	// jump to jt if (dst <size> imm); three slots.
	OpF3

	// opLddw loads imm and skips the second slot of the 64-bit load.
	OpLddw

	NumOps
)
