package verifier

var aluNames = [...]string{"add", "sub", "mul", "div", "or", "and", "lsh", "rsh", "neg", "mod", "xor", "mov", "arsh", "end", "?", "?"}
var jmpNames = [...]string{"ja", "jeq", "jgt", "jge", "jset", "jne", "jsgt", "jsge", "call", "exit", "jlt", "jle", "jslt", "jsle", "?", "?"}
var sizeNames = [...]string{"w", "h", "b", "dw"}

// mnemonic is a short name for an instruction, for error messages.
func mnemonic(r RawInsn) string {
	cls := r.op & 7
	switch cls {
	case ClsALU:
		return aluNames[r.op>>4] + "32"
	case ClsALU64:
		return aluNames[r.op>>4]
	case ClsJMP:
		return jmpNames[r.op>>4]
	case ClsJMP32:
		return jmpNames[r.op>>4] + "32"
	case ClsLD:
		if r.op == 0x18 {
			return "lddw"
		}
		return "ld"
	case ClsLDX:
		return "ldx" + sizeNames[(r.op>>3)&3]
	case ClsST:
		return "st" + sizeNames[(r.op>>3)&3]
	}
	if r.op&0xe0 == ModeATOMIC {
		return "atomic" + sizeNames[(r.op>>3)&3]
	}
	return "stx" + sizeNames[(r.op>>3)&3]
}
