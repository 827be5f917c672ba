package isa

// Sizes shared by the checker and every engine.
const (
	// StackSize is the stack frame of one function, in bytes.
	StackSize = 512
	// MaxCallDepth bounds nested bpf-to-bpf calls (frames).
	MaxCallDepth = 8
)

// Insn is one pre-decoded instruction, as the checker emits it (before the
// interpreter's fusion of loads and jumps).
type Insn struct {
	Op   uint8
	Dst  uint8
	Src  uint8
	Size uint8 // atomics: width; OpBack: the jump op
	Off  int32 // memory offset, or constant ctx/stack offset; OpBack: loop length; OpCallLocal: callee index
	Jt   int32 // jump target pc, helper index, call target; ST: the immediate
	Imm  uint64
}

// Func is one function of a program: instructions [Start, End), Depth
// bytes of its frame zeroed at entry.
type Func struct {
	Start, End, Depth int
}

// Len is the callee's length, what a call charges to the budget.
func (f Func) Len() uint64 { return uint64(f.End - f.Start) }
