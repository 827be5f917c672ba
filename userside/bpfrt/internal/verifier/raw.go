package verifier

// Raw eBPF encoding (RFC 9669): the one definition of the opcode bits
// (userside/bpfrt aliases them).
const (
	ClsLD    = 0x00
	ClsLDX   = 0x01
	ClsST    = 0x02
	ClsSTX   = 0x03
	ClsALU   = 0x04
	ClsJMP   = 0x05
	ClsJMP32 = 0x06
	ClsALU64 = 0x07

	SrcX = 0x08

	AluADD  = 0x00
	AluSUB  = 0x10
	AluMUL  = 0x20
	AluDIV  = 0x30
	AluOR   = 0x40
	AluAND  = 0x50
	AluLSH  = 0x60
	AluRSH  = 0x70
	AluNEG  = 0x80
	AluMOD  = 0x90
	AluXOR  = 0xa0
	AluMOV  = 0xb0
	AluARSH = 0xc0
	AluEND  = 0xd0

	JmpJA   = 0x00
	JmpJEQ  = 0x10
	JmpJGT  = 0x20
	JmpJGE  = 0x30
	JmpJSET = 0x40
	JmpJNE  = 0x50
	JmpJSGT = 0x60
	JmpJSGE = 0x70
	JmpCALL = 0x80
	JmpEXIT = 0x90
	JmpJLT  = 0xa0
	JmpJLE  = 0xb0
	JmpJSLT = 0xc0
	JmpJSLE = 0xd0

	SzW  = 0x00
	SzH  = 0x08
	SzB  = 0x10
	SzDW = 0x18

	ModeIMM    = 0x00
	ModeABS    = 0x20
	ModeIND    = 0x40
	ModeMEM    = 0x60
	ModeMEMSX  = 0x80
	ModeATOMIC = 0xc0

	AtomicFETCH   = 0x01
	AtomicADD     = 0x00
	AtomicOR      = 0x40
	AtomicAND     = 0x50
	AtomicXOR     = 0xa0
	AtomicXCHG    = 0xe0 | AtomicFETCH
	AtomicCMPXCHG = 0xf0 | AtomicFETCH

	PseudoMapFD    = 1
	PseudoMapValue = 2
	PseudoCall     = 1
	PseudoKfunc    = 2
)
