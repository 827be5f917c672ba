package bpfrt

var aluNames = [...]string{"add", "sub", "mul", "div", "or", "and", "lsh", "rsh", "neg", "mod", "xor", "mov", "arsh", "end", "?", "?"}
var jmpNames = [...]string{"ja", "jeq", "jgt", "jge", "jset", "jne", "jsgt", "jsge", "call", "exit", "jlt", "jle", "jslt", "jsle", "?", "?"}
var sizeNames = [...]string{"w", "h", "b", "dw"}

// mnemonic is a short name for an instruction, for error messages.
func mnemonic(r rawInsn) string {
	cls := r.op & 7
	switch cls {
	case clsALU:
		return aluNames[r.op>>4] + "32"
	case clsALU64:
		return aluNames[r.op>>4]
	case clsJMP:
		return jmpNames[r.op>>4]
	case clsJMP32:
		return jmpNames[r.op>>4] + "32"
	case clsLD:
		if r.op == 0x18 {
			return "lddw"
		}
		return "ld"
	case clsLDX:
		return "ldx" + sizeNames[(r.op>>3)&3]
	case clsST:
		return "st" + sizeNames[(r.op>>3)&3]
	}
	if r.op&0xe0 == modeATOMIC {
		return "atomic" + sizeNames[(r.op>>3)&3]
	}
	return "stx" + sizeNames[(r.op>>3)&3]
}
