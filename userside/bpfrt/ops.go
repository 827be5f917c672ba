package bpfrt

// Raw eBPF encoding (RFC 9669).
const (
	clsLD    = 0x00
	clsLDX   = 0x01
	clsST    = 0x02
	clsSTX   = 0x03
	clsALU   = 0x04
	clsJMP   = 0x05
	clsJMP32 = 0x06
	clsALU64 = 0x07

	srcX = 0x08

	aluADD  = 0x00
	aluSUB  = 0x10
	aluMUL  = 0x20
	aluDIV  = 0x30
	aluOR   = 0x40
	aluAND  = 0x50
	aluLSH  = 0x60
	aluRSH  = 0x70
	aluNEG  = 0x80
	aluMOD  = 0x90
	aluXOR  = 0xa0
	aluMOV  = 0xb0
	aluARSH = 0xc0
	aluEND  = 0xd0

	jmpJA   = 0x00
	jmpJEQ  = 0x10
	jmpJGT  = 0x20
	jmpJGE  = 0x30
	jmpJSET = 0x40
	jmpJNE  = 0x50
	jmpJSGT = 0x60
	jmpJSGE = 0x70
	jmpCALL = 0x80
	jmpEXIT = 0x90
	jmpJLT  = 0xa0
	jmpJLE  = 0xb0
	jmpJSLT = 0xc0
	jmpJSLE = 0xd0

	szW  = 0x00
	szH  = 0x08
	szB  = 0x10
	szDW = 0x18

	modeIMM    = 0x00
	modeABS    = 0x20
	modeIND    = 0x40
	modeMEM    = 0x60
	modeMEMSX  = 0x80
	modeATOMIC = 0xc0

	atomicFETCH   = 0x01
	atomicADD     = 0x00
	atomicOR      = 0x40
	atomicAND     = 0x50
	atomicXOR     = 0xa0
	atomicXCHG    = 0xe0 | atomicFETCH
	atomicCMPXCHG = 0xf0 | atomicFETCH

	pseudoMapFD    = 1
	pseudoMapValue = 2
	pseudoCall     = 1
	pseudoKfunc    = 2
)

// Internal, pre-decoded operations. The hot loop switches over these; every
// variant (32/64 bit, immediate/register, static/dynamic memory) is its own
// op so that no decoding happens at run time.
const (
	opInvalid uint8 = iota

	// ALU64, immediate (K) and register (X).
	opAdd64K
	opAdd64X
	opSub64K
	opSub64X
	opMul64K
	opMul64X
	opDiv64K
	opDiv64X
	opSDiv64K
	opSDiv64X
	opOr64K
	opOr64X
	opAnd64K
	opAnd64X
	opLsh64K
	opLsh64X
	opRsh64K
	opRsh64X
	opNeg64
	opMod64K
	opMod64X
	opSMod64K
	opSMod64X
	opXor64K
	opXor64X
	opMov64K
	opMov64X
	opMovSX8_64
	opMovSX16_64
	opMovSX32_64
	opArsh64K
	opArsh64X

	// ALU32.
	opAdd32K
	opAdd32X
	opSub32K
	opSub32X
	opMul32K
	opMul32X
	opDiv32K
	opDiv32X
	opSDiv32K
	opSDiv32X
	opOr32K
	opOr32X
	opAnd32K
	opAnd32X
	opLsh32K
	opLsh32X
	opRsh32K
	opRsh32X
	opNeg32
	opMod32K
	opMod32X
	opSMod32K
	opSMod32X
	opXor32K
	opXor32X
	opMov32K
	opMov32X
	opMovSX8_32
	opMovSX16_32
	opArsh32K
	opArsh32X

	// Byte order (little-endian host).
	opTrunc16
	opTrunc32
	opNop
	opBswap16
	opBswap32
	opBswap64

	// Jumps. Forward conditional jumps only; backward jumps use opBack.
	opJa
	opJeq64K
	opJeq64X
	opJgt64K
	opJgt64X
	opJge64K
	opJge64X
	opJset64K
	opJset64X
	opJne64K
	opJne64X
	opJsgt64K
	opJsgt64X
	opJsge64K
	opJsge64X
	opJlt64K
	opJlt64X
	opJle64K
	opJle64X
	opJslt64K
	opJslt64X
	opJsle64K
	opJsle64X
	opJeq32K
	opJeq32X
	opJgt32K
	opJgt32X
	opJge32K
	opJge32X
	opJset32K
	opJset32X
	opJne32K
	opJne32X
	opJsgt32K
	opJsgt32X
	opJsge32K
	opJsge32X
	opJlt32K
	opJlt32X
	opJle32K
	opJle32X
	opJslt32K
	opJslt32X
	opJsle32K
	opJsle32X
	// opBack is a backward jump (conditional or not): it charges the
	// back-edge budget, then evaluates the condition held in size.
	opBack

	opCall      // helper or kfunc: jt indexes Program.helpers
	opCallLocal // bpf-to-bpf: jt is the target pc, off the callee's function index
	opExit

	// Memory, checked at run time against the VM's region table.
	opLdxB
	opLdxH
	opLdxW
	opLdxDW
	opLdxSB
	opLdxSH
	opLdxSW
	opStB
	opStH
	opStW
	opStDW
	opStxB
	opStxH
	opStxW
	opStxDW
	opAtomic

	// Memory at an offset the checker proved constant from the context
	// pointer: only the context length is checked (imm = off+size).
	opLdxCtxB
	opLdxCtxH
	opLdxCtxW
	opLdxCtxDW
	opLdxCtxSB
	opLdxCtxSH
	opLdxCtxSW
	opStCtxB
	opStCtxH
	opStCtxW
	opStCtxDW
	opStxCtxB
	opStxCtxH
	opStxCtxW
	opStxCtxDW

	// Memory at an offset the checker proved inside the current stack
	// frame: no run-time check at all (off is relative to the frame top).
	opLdxStkB
	opLdxStkH
	opLdxStkW
	opLdxStkDW
	opLdxStkSB
	opLdxStkSH
	opLdxStkSW
	opStStkB
	opStStkH
	opStStkW
	opStStkDW
	opStxStkB
	opStxStkH
	opStxStkW
	opStxStkDW

	// Fused: load u64 from a constant context offset (off) into dst, then
	// a forward 64-bit conditional jump on dst against imm to jt (the
	// shape of every tracing-filter predicate). One op per condition, in
	// opJeq64K order.
	opFJeq
	opFJgt
	opFJge
	opFJset
	opFJne
	opFJsgt
	opFJsge
	opFJlt
	opFJle
	opFJslt
	opFJsle

	// opF3: load u64 from ctx+off into dst, set src = imm (a constant
	// clang puts in a register for the compare), then a forward 64-bit
	// jump to jt if (dst <size> imm); three slots.
	opF3

	// opLddw loads imm and skips the second slot of the 64-bit load.
	opLddw

	numOps
)
