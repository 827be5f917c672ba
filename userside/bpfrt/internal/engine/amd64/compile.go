package amd64

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/kushm/kushm/userside/bpfrt/internal/isa"
)

// ErrNotSupported: no JIT on this platform.
var ErrNotSupported = errors.New("jit: not supported on this platform")

// regMap is the fixed register mapping: eBPF r0..r10 to x86-64. RCX, R10
// and R11 are scratch; R12 holds the Context; RSP is never touched by
// program code (bpf-to-bpf calls keep their frames in the Context).
var regMap = [11]int{RAX, RDI, RSI, RDX, R9, R8, RBX, R13, R14, R15, RBP}

// Program is compiled machine code, before it is mapped executable.
type Program struct {
	Text   []byte
	Resume int // offset of the resume entry (entry is at 0)
	// Data is the offset of the constants after the code (the predicate
	// groups' vectors; len(Text) when there are none): not instructions.
	Data int
	// Groups is the number of predicate groups (Options.AVX2).
	Groups int
	RetPC  map[int]int // offset after a bounds-check call -> instruction
	// StepNext: offset after a bounds-check call -> offset after the
	// access it guards (where an ExitStep resumes).
	StepNext map[int]int
	// MaxCtx is the largest end (offset+size) of the constant-offset
	// context accesses: the code checks none of them, so a run with a
	// shorter context must not enter it.
	MaxCtx uint64
	// What the caller must set up before a run, besides the arguments:
	// the region table's context entry (bounds checks, helpers), the
	// budget (back edges, calls), Context.CtxBase (context accesses after
	// RCX was reused).
	NeedsRegions, NeedsBudget, NeedsCtxBase bool
}

type stub struct {
	label int
	pc    int
	exit  int
}

type compiler struct {
	a        asm
	insns    []isa.Insn
	funcs    []isa.Func
	pcLabel  []int
	target   []bool
	nRegions int
	stubs    []stub
	checks   [2][4]int
	subret   int
	leave    int // restores R14 (g) and RBP, returns to Go
	retPC    map[int]int
	stepNext map[int]int
	step     int // the ExitStep path of the bounds checks
	maxCtx   uint64
	rcxCtx   bool // RCX holds the context base
	target0  bool // some call targets the main function (recursion)

	needsRegions, needsBudget, needsCtxBase bool
	called                                  [2][4]bool // bounds-check subroutines some access calls
	usesCtx                                 bool       // the code names R12 outside its entries (the first pass tells the second)
	opts                                    Options
	// frame: the entries save R14 (g) and RBP and every exit restores
	// them; false when the program uses neither r8 nor r10 (usedRegs).
	frame   bool
	program *Program
	// group[pc]: pc starts a predicate group (groupAt), compiled as one
	// AVX2 compare; simd: some does (every exit to Go clears the upper
	// ymm halves); bias: some group compares unsigned (the sign-bit
	// vector at biasAt is a constant); biasLive: ymm2 holds it here (like
	// rcxCtx: cleared at jump targets and after any instruction that
	// does not keep it).
	group                []bool
	simd, bias, biasLive bool
	biasAt               int
	pool                 []poolVec
}

// poolVec is a 32-byte constant after the code.
type poolVec struct {
	label int
	v     [4]uint64
}

// Options describe the run-time environment the code is compiled for.
type Options struct {
	// Regions is the number of entries of the region table the bounds
	// checks walk; entry 1 is the stack, StackBytes long.
	Regions    int
	StackBytes int
	// Volatile marks the region entries that may be memory mapped from a
	// file that can shrink under the mapping (by index; missing: false):
	// a check that resolves to one does not return to the access but
	// exits with ExitStep, so generated code never faults on it. Other
	// entries keep the check's fast path.
	Volatile []bool
	// AVX2: the processor (and the kernel) support AVX2; runs of four
	// filter predicates on adjacent context fields compile to one vector
	// compare and one branch (groupAt).
	AVX2 bool
	// Lookup, when set, makes calls to helper Lookup.Helper (the standard
	// bpf_map_lookup_elem) on one of Lookup.Maps with a key on the stack
	// run inline; any other call to it exits to Go as usual.
	Lookup *InlineLookup
}

// InlineLookup describes the array maps whose lookups may be inlined.
type InlineLookup struct {
	Helper int32
	Maps   []ArrayMap
}

// ArrayMap is one array map as generated code sees it: the handle a
// program holds in r1, the address of value 0, the stride between
// values and the number of entries.
type ArrayMap struct {
	Handle, Base uint64
	Stride, N    uint32
}

// Compile translates checked instructions to x86-64 for the environment
// o describes.
//
// It assembles twice: the first pass with every jump rel32, the second
// with rel8 wherever the first pass's displacement fitted in 8 bits (code
// only shrinks between the passes, so those still fit).
func Compile(insns []isa.Insn, funcs []isa.Func, o Options) (*Program, error) {
	c, err := compile(insns, funcs, o, nil, true)
	if err != nil {
		return nil, err
	}
	// The second pass knows from the first whether the code names R12
	// (the Context) outside its entries: if not, the main entry does not
	// load it (a loop-free filter never exits to Go nor reads the
	// Context). The second pass only shortens jumps, so it names R12
	// where the first did.
	c2, err := compile(insns, funcs, o, c.a.nearJumps(), c.usesCtx)
	if err != nil {
		return nil, err
	}
	return c2.program, nil
}

func compile(insns []isa.Insn, funcs []isa.Func, o Options, near []bool, ctx bool) (*compiler, error) {
	c := &compiler{insns: insns, funcs: funcs, nRegions: o.Regions, opts: o, retPC: map[int]int{}, stepNext: map[int]int{}}
	c.a.near = near
	n := len(insns)
	c.pcLabel = make([]int, n)
	c.target = make([]bool, n)
	for pc := range insns {
		c.pcLabel[pc] = c.a.newLabel()
	}
	for pc, in := range insns {
		switch {
		case in.Op >= isa.OpJa && in.Op <= isa.OpBack, in.Op == isa.OpCallLocal:
			if int(in.Jt) >= n || in.Jt < 0 {
				return nil, fmt.Errorf("jit: instruction %d: target %d outside the program", pc, in.Jt)
			}
			c.target[in.Jt] = true
			if in.Op == isa.OpCallLocal && int(in.Jt) < funcs[0].End {
				c.target0 = true
			}
		}
	}
	for w := range c.checks {
		for s := range c.checks[w] {
			c.checks[w][s] = c.a.newLabel()
		}
	}
	c.groups()
	c.subret = c.a.newLabel()
	c.leave = c.a.newLabel()
	c.step = c.a.newLabel()
	a := &c.a
	// Entry, called as a Go func(c *Context, r1, r2 uint64) (r0, exit
	// uint64) (ABIInternal: arguments in RAX, RBX, RCX, results
	// in RAX, RBX; R14 is g and RBP the frame pointer, both callee-saved):
	// save them on the goroutine stack (16 bytes, the code's only use of
	// it besides one bounds-check return address), R12 = Context (only
	// when the code names it: ctx), then r1 (the context) and r2 (its
	// length) from the arguments and r10 (the frame top) from
	// Context.Top, each only when the code uses it (usedRegs); the checker
	// proved nothing else is read before written.
	// Every exit leaves r0 in RAX and the exit code in RBX.
	used := c.usedRegs()
	c.frame = used&(1<<8|1<<10) != 0
	c.prologue(ctx)
	c.a.r12 = false
	if used&(1<<2) != 0 {
		a.movRR(true, regMap[2], RCX) // r2 (RSI) = the context's length
	}
	if used&(1<<10) != 0 {
		a.load(regMap[10], mem(RAX, offTop), 8, false) // r10 (RBP) = the frame top
	}
	if used&(1<<1) != 0 {
		a.movRR(true, regMap[1], RBX) // r1 (RDI) = the context
	}
	a.movRR(true, RCX, RBX) // RCX caches the context base
	c.rcxCtx = true
	if used == 1<<11-1 {
		// A helper reads r1-r5 whether or not the program set them
		// (bpf_trace_printk's arguments): zero what the interpreter
		// starts at zero, so that no machine register (Go's values)
		// reaches a helper. FuzzDifferential found this.
		for _, i := range []int{0, 3, 4, 5, 6, 7, 8, 9} {
			a.aluRR(aluXor, false, regMap[i], regMap[i])
		}
	}
	for pc := 0; pc < n; pc++ {
		if c.target[pc] {
			c.rcxCtx, c.biasLive = false, false
		}
		a.bind(c.pcLabel[pc])
		if c.group[pc] {
			c.predicateGroup(pc)
			for k := 1; k < 2*groupLen; k++ {
				a.bind(c.pcLabel[pc+k]) // no jump targets any (groupAt)
			}
			pc += 2*groupLen - 1
			continue
		}
		if c.fusedPredicate(pc) {
			pc++
			a.bind(c.pcLabel[pc])
			continue
		}
		if err := c.insn(pc, &insns[pc]); err != nil {
			return nil, err
		}
	}
	c.outOfLine()
	c.usesCtx = a.r12
	resume := len(a.b)
	c.prologue(true)
	for i, r := range regMap {
		if !c.frame && (i == 8 || i == 10) {
			continue // frameless: R14 (g) and RBP stay Go's
		}
		a.load(r, mem(R12, int32(offRegs+8*i)), 8, false)
	}
	a.jmpMem(mem(R12, offResume))
	data := len(a.b)
	groups := len(c.pool)
	if c.simd {
		a.align(32)
		if c.bias {
			a.bind(c.biasAt)
			for range 4 {
				a.b = binary.LittleEndian.AppendUint64(a.b, 1<<63)
			}
		}
		for _, v := range c.pool {
			a.bind(v.label)
			for _, x := range v.v {
				a.b = binary.LittleEndian.AppendUint64(a.b, x)
			}
		}
	}
	c.program = &Program{Text: a.finish(), Resume: resume, Data: data, Groups: groups, RetPC: c.retPC, StepNext: c.stepNext, MaxCtx: c.maxCtx,
		NeedsRegions: c.needsRegions, NeedsBudget: c.needsBudget, NeedsCtxBase: c.needsCtxBase}
	return c, nil
}

// usedRegs: the eBPF registers (bit i: ri) whose machine registers the
// code reads or writes. A helper or bpf-to-bpf call, a callee's exit and
// an ExitStep (volatile entries) save or restore every register; a
// context access does not read its base register (RCX or CtxBase holds
// the context); a stack access reads RBP (r10). When neither r8 (R14, Go's
// g) nor r10 (RBP, Go's frame pointer) is used, the code runs frameless:
// no prologue save, no epilogue restore.
func (c *compiler) usedRegs() uint16 {
	const all = 1<<11 - 1
	for _, v := range c.opts.Volatile {
		if v {
			return all
		}
	}
	var m uint16
	bit := func(r uint8) uint16 { return 1 << (r & 15 % 11) }
	for pc := 0; pc < len(c.insns); pc++ {
		if c.fusable(pc) {
			pc++ // a fused predicate reads the context into R10 only
			continue
		}
		in := &c.insns[pc]
		op := in.Op
		switch {
		case op == isa.OpInvalid, op == isa.OpNop, op == isa.OpJa:
		case op == isa.OpCall, op == isa.OpCallLocal:
			return all
		case op == isa.OpExit:
			if pc >= c.funcs[0].End || c.target0 {
				return all
			}
			m |= 1
		case op == isa.OpLddw:
			m |= bit(in.Dst)
		case op >= isa.OpLdxCtxB && op <= isa.OpLdxCtxSW:
			m |= bit(in.Dst)
		case op >= isa.OpStCtxB && op < isa.OpStxCtxB:
		case op >= isa.OpStxCtxB && op <= isa.OpStxCtxDW:
			m |= bit(in.Src)
		case op >= isa.OpLdxStkB && op <= isa.OpLdxStkSW:
			m |= bit(in.Dst) | 1<<10
		case op >= isa.OpStStkB && op < isa.OpStxStkB:
			m |= 1 << 10
		case op >= isa.OpStxStkB && op <= isa.OpStxStkDW:
			m |= bit(in.Src) | 1<<10
		default:
			m |= bit(in.Dst) | bit(in.Src)
		}
	}
	return m
}

var condCC = [11]byte{ccE, ccA, ccAE, ccNE /* jset: test, then ne */, ccNE, ccG, ccGE, ccB, ccBE, ccL, ccLE}

var loadSizes = [7]int{1, 2, 4, 8, 1, 2, 4}

func sizeIdx(size int) int {
	switch size {
	case 1:
		return 0
	case 2:
		return 1
	case 4:
		return 2
	}
	return 3
}

func (c *compiler) stub(pc, exit int) int {
	if exit == ExitBudget {
		c.needsBudget = true
	}
	l := c.a.newLabel()
	c.stubs = append(c.stubs, stub{label: l, pc: pc, exit: exit})
	return l
}

func (c *compiler) ctxBase() {
	if !c.rcxCtx {
		c.needsCtxBase = true
		c.a.load(RCX, mem(R12, offCtxBase), 8, false)
		c.rcxCtx = true
	}
}

func (c *compiler) noteCtx(end uint64) {
	if end > c.maxCtx {
		c.maxCtx = end
	}
}

// aluK: op d, imm (imm as the instruction holds it: sign-extended for 64
// bits, zero-extended for 32).
func (c *compiler) aluK(op aluOp, w bool, d int, imm uint64) {
	v := int64(imm)
	if !w {
		v = int64(int32(uint32(imm)))
	}
	if v == int64(int32(v)) {
		c.a.aluRI(op, w, reg(d), int32(v))
		return
	}
	c.a.movImm(RCX, imm)
	c.a.aluRR(op, w, d, RCX)
	c.rcxCtx = false
}

// saveExit stores every register, the exit code and pc, the resume point,
// and returns to Go; resumption continues after it.
func (c *compiler) saveExit(exit, pc int, arg uint64) {
	c.needsRegions = true // helpers check their memory against the table
	a := &c.a
	for i, r := range regMap {
		a.store(mem(R12, int32(offRegs+8*i)), r, 8)
	}
	l := a.newLabel()
	a.leaLabel(RCX, l)
	a.store(mem(R12, offResume), RCX, 8)
	a.storeImm(mem(R12, offPC), int32(pc), 8)
	a.movImm(RCX, arg)
	a.store(mem(R12, offArg), RCX, 8)
	a.movImm32(RBX, uint32(exit))
	a.jmp(c.leave)
	a.bind(l)
	c.rcxCtx = false
}

func (c *compiler) insn(pc int, in *isa.Insn) error {
	a := &c.a
	d, s := regMap[in.Dst&15%11], regMap[in.Src&15%11]
	keep := false // the instruction leaves RCX alone
	op := in.Op
	switch {
	case op == isa.OpInvalid:
		keep = true // unreachable or the second slot of lddw
	case op == isa.OpLddw:
		a.movImm(d, in.Imm)
		keep = true
	case op >= isa.OpAdd64K && op <= isa.OpArsh32X:
		keep = c.alu(op, d, s, in.Imm)
	case op == isa.OpTrunc16:
		a.movzx16(d, d)
		keep = true
	case op == isa.OpTrunc32:
		a.movRR(false, d, d)
		keep = true
	case op == isa.OpNop:
		keep = true
	case op == isa.OpBswap16:
		a.rol16by8(d)
		a.movzx16(d, d)
		keep = true
	case op == isa.OpBswap32:
		a.bswap(false, d)
		keep = true
	case op == isa.OpBswap64:
		a.bswap(true, d)
		keep = true
	case op == isa.OpJa:
		a.jmp(c.pcLabel[in.Jt])
		keep = true
	case op >= isa.OpJeq64K && op <= isa.OpJsle32X:
		c.cond(op, d, s, in.Imm, c.pcLabel[in.Jt])
		keep = true
	case op == isa.OpBack:
		a.aluRI(aluSub, true, mem(R12, offBudget), in.Off)
		a.jcc(ccB, c.stub(pc, ExitBudget))
		if in.Size == isa.OpJa {
			a.jmp(c.pcLabel[in.Jt])
		} else {
			c.cond(in.Size, d, s, in.Imm, c.pcLabel[in.Jt])
		}
		keep = true
	case op == isa.OpCall:
		if l := c.opts.Lookup; l != nil && in.Jt == l.Helper && len(l.Maps) > 0 {
			c.inlineLookup(pc, in, l)
			break
		}
		c.saveExit(ExitHelper, pc, uint64(in.Jt))
	case op == isa.OpCallLocal:
		c.callLocal(pc, in)
	case op == isa.OpExit:
		if pc >= c.funcs[0].End || c.target0 {
			// in a callee (or a main function that is itself called):
			// return to the caller unless this is the outermost frame
			a.aluRI(aluCmp, true, mem(R12, offDepth), 0)
			a.jcc(ccNE, c.subret)
		}
		a.aluRR(aluXor, false, RBX, RBX) // ExitReturn; r0 is in RAX
		c.epilogue()                     // inline
	case op >= isa.OpLdxB && op <= isa.OpLdxSW:
		c.needsRegions = true
		k := int(op - isa.OpLdxB)
		size := loadSizes[k]
		a.lea(R11, mem(s, in.Off))
		a.call(c.check(0, sizeIdx(size)))
		ret := len(a.b)
		c.retPC[ret] = pc
		a.load(d, mem(R11, 0), size, k >= 4)
		c.stepNext[ret] = len(a.b)
	case op >= isa.OpStB && op <= isa.OpStxDW:
		c.needsRegions = true
		k := int(op-isa.OpStB) & 3
		size := loadSizes[k]
		a.lea(R11, mem(d, in.Off))
		a.call(c.check(1, k))
		ret := len(a.b)
		c.retPC[ret] = pc
		if op >= isa.OpStxB {
			a.store(mem(R11, 0), s, size)
		} else {
			a.storeImm(mem(R11, 0), in.Jt, size)
		}
		c.stepNext[ret] = len(a.b)
	case op == isa.OpAtomic:
		c.atomic(pc, in, d, s)
	case op >= isa.OpLdxCtxB && op <= isa.OpLdxCtxSW:
		k := int(op - isa.OpLdxCtxB)
		c.noteCtx(in.Imm)
		c.ctxBase()
		a.load(d, mem(RCX, in.Off), loadSizes[k], k >= 4)
		keep = true
	case op >= isa.OpStCtxB && op <= isa.OpStxCtxDW:
		k := int(op-isa.OpStCtxB) & 3
		c.noteCtx(in.Imm)
		c.ctxBase()
		if op >= isa.OpStxCtxB {
			a.store(mem(RCX, in.Off), s, loadSizes[k])
		} else {
			a.storeImm(mem(RCX, in.Off), in.Jt, loadSizes[k])
		}
		keep = true
	case op >= isa.OpLdxStkB && op <= isa.OpLdxStkSW:
		k := int(op - isa.OpLdxStkB)
		a.load(d, mem(RBP, in.Off), loadSizes[k], k >= 4)
		keep = true
	case op >= isa.OpStStkB && op <= isa.OpStxStkDW:
		k := int(op-isa.OpStStkB) & 3
		if op >= isa.OpStxStkB {
			a.store(mem(RBP, in.Off), s, loadSizes[k])
		} else {
			a.storeImm(mem(RBP, in.Off), in.Jt, loadSizes[k])
		}
		keep = true
	default:
		return fmt.Errorf("jit: instruction %d: operation %d cannot be compiled", pc, op)
	}
	if !keep {
		// The code resumes from Go only after such instructions (a
		// helper, a bpf-to-bpf call, an access to a volatile region),
		// and Go's code clobbers the vector registers.
		c.rcxCtx, c.biasLive = false, false
	}
	return nil
}

// inlineLookup: bpf_map_lookup_elem on an array map, the key on the
// stack: r0 = &value[key], or 0 past the last entry; r1-r5 unchanged, as
// the helper leaves them. Any other map or key pointer takes the helper
// exit, which runs the helper with its checks.
func (c *compiler) inlineLookup(pc int, in *isa.Insn, l *InlineLookup) {
	a := &c.a
	c.needsRegions = true
	slow, done := a.newLabel(), a.newLabel()
	found := make([]int, len(l.Maps))
	for i, m := range l.Maps {
		found[i] = a.newLabel()
		a.movImm(RCX, m.Handle)
		a.aluRR(aluCmp, true, regMap[1], RCX)
		a.jcc(ccE, found[i])
	}
	a.jmp(slow)
	for i, m := range l.Maps {
		a.bind(found[i])
		// the key: 4 bytes inside the stack region (entry 1)
		a.load(R11, mem(R12, offRegions), 8, false)
		a.movRR(true, RCX, regMap[2])
		a.inst(false, true, false, []byte{0x2b}, RCX, mem(R11, regionSize+regionStart)) // rel = r2 - stack start
		a.aluRI(aluCmp, true, reg(RCX), int32(c.opts.StackBytes-4))
		a.jcc(ccA, slow)
		a.load(RCX, mem(regMap[2], 0), 4, false)
		miss := a.newLabel()
		a.aluRI(aluCmp, false, reg(RCX), int32(m.N))
		a.jcc(ccAE, miss)
		a.imulRI(true, RCX, int32(m.Stride))
		a.movImm(RAX, m.Base)
		a.aluRR(aluAdd, true, RAX, RCX)
		a.jmp(done)
		a.bind(miss)
		a.aluRR(aluXor, false, RAX, RAX)
		a.jmp(done)
	}
	a.bind(slow)
	c.saveExit(ExitHelper, pc, uint64(in.Jt))
	a.bind(done)
	c.rcxCtx = false
}

// Atomic operations (RFC 9669), as the imm of an atomic instruction.
const (
	atomicFetch   = 0x01
	atomicAdd     = 0x00
	atomicOr      = 0x40
	atomicAnd     = 0x50
	atomicXor     = 0xa0
	atomicXchg    = 0xe0 | atomicFetch
	atomicCmpxchg = 0xf0 | atomicFetch
)

// atomic: alignment (ExitMisaligned), then the write bounds check, then a
// locked instruction (a cmpxchg loop for the fetching or/and/xor).
func (c *compiler) atomic(pc int, in *isa.Insn, d, s int) {
	c.needsRegions = true
	a := &c.a
	size := int(in.Size)
	w := size == 8
	a.lea(R11, mem(d, in.Off))
	a.testRI(true, reg(R11), int32(size-1))
	a.jcc(ccNE, c.stub(pc, ExitMisaligned))
	a.call(c.check(1, sizeIdx(size)))
	ret := len(a.b)
	c.retPC[ret] = pc
	defer func() { c.stepNext[ret] = len(a.b) }()
	m := mem(R11, 0)
	op := uint32(in.Imm)
	switch op {
	case atomicAdd:
		a.lockALU(aluAdd, w, m, s)
	case atomicOr:
		a.lockALU(aluOr, w, m, s)
	case atomicAnd:
		a.lockALU(aluAnd, w, m, s)
	case atomicXor:
		a.lockALU(aluXor, w, m, s)
	case atomicAdd | atomicFetch:
		a.movRR(true, RCX, s)
		a.lockXadd(w, m, RCX)
		a.movRR(true, s, RCX)
	case atomicXchg:
		a.movRR(true, RCX, s)
		a.xchg(w, m, RCX)
		a.movRR(true, s, RCX)
	case atomicCmpxchg:
		a.lockCmpxchg(w, m, s)
		if !w {
			a.movRR(false, RAX, RAX) // old value, zero-extended, on success too
		}
	default: // or, and, xor with fetch: a compare-and-swap loop
		alu := map[uint32]aluOp{atomicOr | atomicFetch: aluOr, atomicAnd | atomicFetch: aluAnd, atomicXor | atomicFetch: aluXor}[op]
		src := s
		a.movRR(true, R10, RAX)
		if s == RAX {
			src = R10
		}
		a.load(RAX, m, size, false)
		loop := a.newLabel()
		a.bind(loop)
		a.movRR(true, RCX, RAX)
		a.aluRR(alu, w, RCX, src)
		a.lockCmpxchg(w, m, RCX)
		a.jcc(ccNE, loop)
		if s == RAX {
			if !w {
				a.movRR(false, RAX, RAX) // r0 is the old value, zero-extended
			}
		} else {
			a.movRR(w, s, RAX)
			a.movRR(true, RAX, R10)
		}
	}
}

// fusedPredicate compiles "rD = *(u64 *)(ctx + k); if rD <op> imm goto
// L" as a load into the scratch R10, a compare and a jcc when rD is
// dead on both paths (the tracing-filter predicate: the next instruction
// loads rD again, or the path exits), so rD is never written.
func (c *compiler) fusedPredicate(pc int) bool {
	if !c.fusable(pc) {
		return false
	}
	ld, j := &c.insns[pc], &c.insns[pc+1]
	a := &c.a
	c.noteCtx(ld.Imm)
	c.ctxBase()
	idx := (j.Op - isa.OpJeq64K) / 2
	// Into the scratch R10, then compare the register: a compare of
	// memory at a displacement with an immediate does not fuse with the
	// jcc on the AMD Zen 4 measured (two macro-ops per predicate, and the
	// load-op); cmp reg, imm + jcc fuses. Measured side by side at N = 50
	// (docs/benchmarks.md): 9.6 against 10.3-10.4 ns minima.
	a.load(R10, mem(RCX, ld.Off), 8, false)
	if idx == 3 { // jset
		a.testRI(true, reg(R10), int32(j.Imm))
	} else {
		a.aluRI(aluCmp, true, reg(R10), int32(j.Imm))
	}
	a.jcc(condCC[idx], c.pcLabel[j.Jt])
	return true
}

// fusable reports whether fusedPredicate compiles pc and pc+1 as one
// predicate (their register rD is then never read nor written).
func (c *compiler) fusable(pc int) bool {
	if pc+1 >= len(c.insns) || c.target[pc+1] {
		return false
	}
	ld, j := &c.insns[pc], &c.insns[pc+1]
	if ld.Op != isa.OpLdxCtxDW || j.Op < isa.OpJeq64K || j.Op > isa.OpJsle64X || (j.Op-isa.OpJeq64K)%2 != 0 || j.Dst != ld.Dst {
		return false
	}
	return c.dead(ld.Dst, pc+2) && c.dead(ld.Dst, int(j.Jt))
}

// dead reports whether register reg is written before it is read on the
// straight-line path from pc, looking only at the instructions a filter
// predicate is followed by (context loads, constant moves, the main
// function's exit, which reads only r0); anything else counts as a read.
func (c *compiler) dead(reg uint8, pc int) bool {
	for k := 0; k < 8 && pc < len(c.insns); k, pc = k+1, pc+1 {
		in := &c.insns[pc]
		switch {
		case in.Op >= isa.OpLdxCtxB && in.Op <= isa.OpLdxCtxSW, in.Op == isa.OpMov64K, in.Op == isa.OpMov32K:
			if in.Dst == reg {
				return true
			}
		case in.Op == isa.OpExit:
			return reg != 0 && pc < c.funcs[0].End && !c.target0
		default:
			return false
		}
	}
	return false
}

// groupLen is the number of predicates a group compares at once (the
// four 64-bit lanes of a ymm register).
const groupLen = 4

// The ymm registers a group uses (Go's ABI keeps X15 zero; these are
// caller-saved for Go, like every other vector register).
const (
	ymmF    = 0 // the fields (biased for unsigned compares), then the lane mask
	ymmK    = 1 // the constants, when they are the first operand
	ymmBias = 2 // 1<<63 in each lane, loaded before the first unsigned group (biasLive)
)

// groups marks where predicate groups start (c.group), scanning as the
// compiler does: a group, else a fused predicate, else one instruction.
func (c *compiler) groups() {
	c.group = make([]bool, len(c.insns))
	c.biasAt = c.a.newLabel()
	for pc := 0; pc < len(c.insns); {
		switch {
		case c.groupAt(pc):
			c.group[pc], c.simd = true, true
			if isUnsignedOrder((c.insns[pc+1].Op - isa.OpJeq64K) / 2) {
				c.bias = true
			}
			pc += 2 * groupLen
		case c.fusable(pc):
			pc += 2
		default:
			pc++
		}
	}
}

func isUnsignedOrder(idx uint8) bool { return idx == 1 || idx == 2 || idx == 7 || idx == 8 }

// groupAt reports whether the four fused predicates from pc form a group:
// each "rD = *(u64 *)(ctx + off); if rD <op> imm goto L" with rD dead
// after it (fusable), the same op (any 64-bit compare with an immediate
// but jset) and the same L, their offsets four adjacent fields in any
// order, and no jump into the group past its start. Then "some predicate
// jumps" is "some lane of one vector compare holds": the group loads the
// four fields at once (one 32-byte load, inside MaxCtx as each field is)
// and branches once. The program's state at L and after the group is
// the same whichever predicate jumped (no register written, no memory
// written, no fault possible), so the result equals the interpreter's,
// which evaluates them one by one.
func (c *compiler) groupAt(pc int) bool {
	if !c.opts.AVX2 || pc+2*groupLen > len(c.insns) {
		return false
	}
	first := &c.insns[pc+1]
	if (first.Op-isa.OpJeq64K)/2 == 3 {
		return false // jset: no vector form
	}
	var seen [groupLen]bool
	lo := int32(-1)
	for k := 0; k < groupLen; k++ {
		p := pc + 2*k
		if (k > 0 && c.target[p]) || !c.fusable(p) {
			return false
		}
		ld, j := &c.insns[p], &c.insns[p+1]
		if j.Op != first.Op || j.Jt != first.Jt || ld.Off < 0 || ld.Off%8 != 0 {
			return false
		}
		if lo < 0 || ld.Off < lo {
			lo = ld.Off
		}
	}
	for k := 0; k < groupLen; k++ {
		i := (c.insns[pc+2*k].Off - lo) / 8
		if i >= groupLen || seen[i] {
			return false
		}
		seen[i] = true
	}
	return true
}

// predicateGroup compiles the group at pc (groupAt): the four fields in
// one ymm register, one compare with the four immediates (a constant
// after the code), the lane mask to R11, one branch to L. Unsigned
// compares flip the sign bits of both sides first (AVX2 compares signed).
// Each op is a compare whose lanes hold, taken when any lane holds (eq,
// gt, lt), or its complement, taken when not all hold (ne, le, ge).
func (c *compiler) predicateGroup(pc int) {
	a := &c.a
	c.ctxBase()
	idx := (c.insns[pc+1].Op - isa.OpJeq64K) / 2
	lo := c.insns[pc].Off
	for k := 1; k < groupLen; k++ {
		lo = min(lo, c.insns[pc+2*k].Off)
	}
	v := poolVec{label: a.newLabel()}
	biased := isUnsignedOrder(idx)
	for k := 0; k < groupLen; k++ {
		ld, j := &c.insns[pc+2*k], &c.insns[pc+2*k+1]
		c.noteCtx(ld.Imm)
		imm := uint64(int64(int32(uint32(j.Imm)))) // sign-extended, as cmp r64, imm32
		if biased {
			imm ^= 1 << 63
		}
		v.v[(ld.Off-lo)/8] = imm
	}
	c.pool = append(c.pool, v)
	fields := mem(RCX, lo)
	if biased && !c.biasLive {
		a.vmovdqu(ymmBias, ripLabel(c.biasAt))
		c.biasLive = true
	}
	if biased {
		a.vpxor(ymmF, ymmBias, fields)
	} else {
		a.vmovdqu(ymmF, fields)
	}
	k := ripLabel(v.label)
	any := true
	switch idx {
	case 0, 4: // eq; ne: not all equal
		a.vpcmpeqq(ymmF, ymmF, k)
		any = idx == 0
	case 1, 5, 8, 10: // gt, sgt: field > imm; le, sle: not all greater
		a.vpcmpgtq(ymmF, ymmF, k)
		any = idx == 1 || idx == 5
	default: // lt, slt: imm > field; ge, sge: not all less
		a.vmovdqu(ymmK, k)
		a.vpcmpgtq(ymmF, ymmK, reg(ymmF))
		any = idx == 7 || idx == 9
	}
	a.vmovmskpd(R11, ymmF)
	l := c.pcLabel[c.insns[pc+1].Jt]
	if any {
		a.testRR(false, R11, R11)
		a.jcc(ccNE, l)
	} else {
		a.aluRI(aluCmp, false, reg(R11), 1<<groupLen-1)
		a.jcc(ccNE, l)
	}
}

// cond: compare and jump to l for a conditional jump op.
func (c *compiler) cond(op uint8, d, s int, imm uint64, l int) {
	a := &c.a
	w := op < isa.OpJeq32K
	base := isa.OpJeq64K
	if !w {
		base = isa.OpJeq32K
	}
	idx := (op - base) / 2
	x := (op-base)%2 == 1
	isSet := idx == 3
	switch {
	case x && isSet:
		a.testRR(w, d, s)
	case x:
		a.aluRR(aluCmp, w, d, s)
	case isSet:
		a.testRI(w, reg(d), int32(imm))
	default:
		a.aluRI(aluCmp, w, reg(d), int32(imm))
	}
	a.jcc(condCC[idx], l)
}

// alu compiles ALU64/ALU32; it reports whether RCX was left alone.
func (c *compiler) alu(op uint8, d, s int, imm uint64) bool {
	a := &c.a
	w := op < isa.OpAdd32K
	base := isa.OpAdd64K
	if !w {
		base = isa.OpAdd32K
	}
	k := op - base + isa.OpAdd64K // the 64-bit op of the same position
	if !w {
		switch op {
		case isa.OpMovSX8_32:
			k = isa.OpMovSX8_64
		case isa.OpMovSX16_32:
			k = isa.OpMovSX16_64
		case isa.OpArsh32K:
			k = isa.OpArsh64K
		case isa.OpArsh32X:
			k = isa.OpArsh64X
		}
	}
	x := false
	switch k {
	case isa.OpAdd64K, isa.OpSub64K, isa.OpMul64K, isa.OpDiv64K, isa.OpSDiv64K, isa.OpOr64K, isa.OpAnd64K,
		isa.OpLsh64K, isa.OpRsh64K, isa.OpMod64K, isa.OpSMod64K, isa.OpXor64K, isa.OpMov64K, isa.OpArsh64K:
	default:
		x = true
	}
	switch k {
	case isa.OpAdd64K:
		c.aluK(aluAdd, w, d, imm)
	case isa.OpAdd64X:
		a.aluRR(aluAdd, w, d, s)
	case isa.OpSub64K:
		c.aluK(aluSub, w, d, imm)
	case isa.OpSub64X:
		a.aluRR(aluSub, w, d, s)
	case isa.OpOr64K:
		c.aluK(aluOr, w, d, imm)
	case isa.OpOr64X:
		a.aluRR(aluOr, w, d, s)
	case isa.OpAnd64K:
		c.aluK(aluAnd, w, d, imm)
	case isa.OpAnd64X:
		a.aluRR(aluAnd, w, d, s)
	case isa.OpXor64K:
		c.aluK(aluXor, w, d, imm)
	case isa.OpXor64X:
		a.aluRR(aluXor, w, d, s)
	case isa.OpMov64K:
		if w {
			a.movImm(d, imm)
		} else {
			a.movImm32(d, uint32(imm))
		}
	case isa.OpMov64X:
		a.movRR(w, d, s)
	case isa.OpMul64K:
		v := int64(imm)
		if !w {
			v = int64(int32(uint32(imm)))
		}
		if v == int64(int32(v)) {
			a.imulRI(w, d, int32(v))
		} else {
			a.movImm(RCX, imm)
			a.imulRR(w, d, RCX)
			return false
		}
	case isa.OpMul64X:
		a.imulRR(w, d, s)
	case isa.OpNeg64:
		a.f7(3, w, reg(d))
	case isa.OpLsh64K, isa.OpRsh64K, isa.OpArsh64K:
		mask := uint64(63)
		if !w {
			mask = 31
		}
		ext := map[uint8]int{isa.OpLsh64K: shl, isa.OpRsh64K: shr, isa.OpArsh64K: sar}[k]
		n := uint8(imm & mask)
		if n == 0 && !w {
			a.movRR(false, d, d) // a 32-bit op zero-extends even by 0
		} else if n != 0 {
			a.shiftImm(ext, w, d, n)
		}
	case isa.OpLsh64X, isa.OpRsh64X, isa.OpArsh64X:
		ext := map[uint8]int{isa.OpLsh64X: shl, isa.OpRsh64X: shr, isa.OpArsh64X: sar}[k]
		a.movRR(true, RCX, s)
		a.shiftCL(ext, w, d)
		if !w {
			a.movRR(false, d, d) // zero-extend even when the count was 0
		}
		return false
	case isa.OpDiv64K, isa.OpDiv64X, isa.OpMod64K, isa.OpMod64X, isa.OpSDiv64K, isa.OpSDiv64X, isa.OpSMod64K, isa.OpSMod64X:
		signed := k == isa.OpSDiv64K || k == isa.OpSDiv64X || k == isa.OpSMod64K || k == isa.OpSMod64X
		isMod := k == isa.OpMod64K || k == isa.OpMod64X || k == isa.OpSMod64K || k == isa.OpSMod64X
		c.divmod(w, signed, isMod, d, s, !x, imm)
		return false
	case isa.OpMovSX8_64:
		a.movsx(w, d, s, 8)
	case isa.OpMovSX16_64:
		a.movsx(w, d, s, 16)
	case isa.OpMovSX32_64:
		a.movsx(true, d, s, 32)
	default:
		// ALU32 has sign-extending moves of 8 and 16 bits only, at the
		// same positions; anything else is a checker/engine mismatch.
		panic(fmt.Sprintf("jit: ALU op %d", op))
	}
	return true
}

// divmod: d = d / or % divisor with RFC 9669 results: x/0 = 0, x%0 = x,
// and the signed overflow (MIN / -1 = MIN, MIN % -1 = 0) never reaches
// the processor's #DE. RAX and RDX (r0, r3) are saved in R10/R11.
func (c *compiler) divmod(w, signed, isMod bool, d, s int, isImm bool, imm uint64) {
	a := &c.a
	v := imm
	if !w {
		v = uint64(uint32(imm))
	}
	if isImm {
		minus1 := (w && int64(v) == -1) || (!w && int32(uint32(v)) == -1)
		switch {
		case v == 0 && !isMod:
			a.movImm32(d, 0)
			return
		case v == 0 && !w:
			a.movRR(false, d, d)
			return
		case v == 0:
			return
		case signed && minus1 && isMod:
			a.movImm32(d, 0)
			return
		case signed && minus1:
			a.f7(3, w, reg(d))
			return
		}
	}
	a.movRR(true, R10, RAX)
	a.movRR(true, R11, RDX)
	if isImm {
		a.movImm(RCX, v)
	} else {
		a.movRR(true, RCX, s)
	}
	a.movRR(true, RAX, d)
	done := a.newLabel()
	if !isImm {
		nz := a.newLabel()
		a.testRR(w, RCX, RCX)
		a.jcc(ccNE, nz)
		if isMod {
			a.movRR(w, RCX, RAX)
		} else {
			a.aluRR(aluXor, false, RCX, RCX)
		}
		a.jmp(done)
		a.bind(nz)
		if signed {
			normal := a.newLabel()
			a.aluRI(aluCmp, w, reg(RCX), -1)
			a.jcc(ccNE, normal)
			if isMod {
				a.aluRR(aluXor, false, RCX, RCX)
			} else {
				a.f7(3, w, reg(RAX))
				a.movRR(true, RCX, RAX)
			}
			a.jmp(done)
			a.bind(normal)
		}
	}
	if signed {
		a.cqo(w)
		a.f7(7, w, reg(RCX))
	} else {
		a.aluRR(aluXor, false, RDX, RDX)
		a.f7(6, w, reg(RCX))
	}
	if isMod {
		a.movRR(w, RCX, RDX)
	} else {
		a.movRR(w, RCX, RAX)
	}
	a.bind(done)
	a.movRR(true, RAX, R10)
	a.movRR(true, RDX, R11)
	a.movRR(true, d, RCX)
}

// callLocal: a bpf-to-bpf call. Frames live in the Context, not on the
// machine stack: the return address is stored there and exit jumps to it.
func (c *compiler) callLocal(pc int, in *isa.Insn) {
	a := &c.a
	a.load(RCX, mem(R12, offDepth), 8, false)
	a.aluRI(aluCmp, true, reg(RCX), isa.MaxCallDepth-1)
	a.jcc(ccAE, c.stub(pc, ExitDepth))
	a.aluRI(aluSub, true, mem(R12, offBudget), int32(c.funcs[in.Off].Len()))
	a.jcc(ccB, c.stub(pc, ExitBudget))
	a.imulRI(true, RCX, frameSize)
	a.aluRR(aluAdd, true, RCX, R12)
	ret := a.newLabel()
	a.leaLabel(R10, ret)
	a.store(mem(RCX, offFrames+frameRet), R10, 8)
	for i, r := range []int{regMap[6], regMap[7], regMap[8], regMap[9]} {
		a.store(mem(RCX, int32(offFrames+frameSaved+8*i)), r, 8)
	}
	a.aluRI(aluAdd, true, mem(R12, offDepth), 1)
	a.aluRI(aluAdd, true, reg(RBP), isa.StackSize)
	// Zero the callee's frame bytes [fp-depth, fp), as the interpreter does.
	if dep := c.funcs[in.Off].Depth; dep > 0 {
		a.aluRR(aluXor, false, RCX, RCX)
		q := dep / 8
		if q > 8 {
			// a loop, so that a call site costs the same few bytes
			// whatever the callee's frame (code size stays linear in
			// the program)
			a.lea(R11, mem(RBP, int32(-8*q)))
			loop := a.newLabel()
			a.bind(loop)
			a.store(mem(R11, 0), RCX, 8)
			a.aluRI(aluAdd, true, reg(R11), 8)
			a.aluRR(aluCmp, true, R11, RBP)
			a.jcc(ccB, loop)
		} else {
			for k := 1; k <= q; k++ {
				a.store(mem(RBP, int32(-8*k)), RCX, 8)
			}
		}
		for b := 8*q + 1; b <= dep; b++ {
			a.store(mem(RBP, int32(-b)), RCX, 1)
		}
	}
	a.jmp(c.pcLabel[in.Jt])
	a.bind(ret)
}

// prologue saves Go's registers when the code uses them and, with ctx,
// loads R12 with the Context.
func (c *compiler) prologue(ctx bool) {
	if c.frame {
		c.a.push(RBP)
		c.a.push(R14)
	}
	if ctx {
		c.a.movRR(true, R12, RAX)
	}
}

// epilogue restores what the prologue saved and returns to Go (upper
// ymm halves cleared when the code uses them: Go's SSE code follows).
func (c *compiler) epilogue() {
	if c.simd {
		c.a.vzeroupper()
	}
	if c.frame {
		c.a.pop(R14)
		c.a.pop(RBP)
	}
	c.a.ret()
}

// outOfLine emits the exit stubs, the return from a bpf-to-bpf call and
// the bounds-check subroutines.
// check: the label of the bounds-check subroutine for a write (w = 1) or
// read of size sizes[si]; outOfLine emits only those called.
func (c *compiler) check(w, si int) int {
	c.called[w][si] = true
	return c.checks[w][si]
}

func (c *compiler) outOfLine() {
	a := &c.a
	for _, s := range c.stubs {
		a.bind(s.label)
		a.store(mem(R12, offAddr), R11, 8) // the address, for ExitMisaligned
		a.storeImm(mem(R12, offPC), int32(s.pc), 8)
		a.movImm32(RBX, uint32(s.exit))
		a.jmp(c.leave)
	}
	a.bind(c.leave)
	c.epilogue()
	if c.frame { // only a callee's exit returns here, and it needs the frame
		a.bind(c.subret)
		a.load(RCX, mem(R12, offDepth), 8, false)
		a.aluRI(aluSub, true, reg(RCX), 1)
		a.store(mem(R12, offDepth), RCX, 8)
		a.imulRI(true, RCX, frameSize)
		a.aluRR(aluAdd, true, RCX, R12)
		for i, r := range []int{regMap[6], regMap[7], regMap[8], regMap[9]} {
			a.load(r, mem(RCX, int32(offFrames+frameSaved+8*i)), 8, false)
		}
		a.aluRI(aluSub, true, reg(RBP), isa.StackSize)
		a.jmpMem(mem(RCX, offFrames+frameRet))
	}
	step := false // some check jumps to c.step
	// check[write][size]: R11 is the address; returns when
	// [R11, R11+size) is inside one region (writable for a write), else
	// records the fault and returns to Go from the caller's frame.
	for w := 0; w < 2; w++ {
		for si, size := range []int32{1, 2, 4, 8} {
			if !c.called[w][si] {
				continue // no access calls it
			}
			a.bind(c.checks[w][si])
			fail := a.newLabel()
			a.load(RCX, mem(R12, offRegions), 8, false)
			for i := 0; i < c.nRegions; i++ {
				next := a.newLabel()
				e := int32(i * regionSize)
				a.movRR(true, R10, R11)
				a.inst(false, true, false, []byte{0x2b}, R10, mem(RCX, e+regionStart)) // sub r10, [start]
				a.inst(false, true, false, []byte{0x3b}, R10, mem(RCX, e+regionLen))   // cmp r10, [size]
				a.jcc(ccAE, next)
				a.aluRI(aluAdd, true, reg(R10), size)
				a.inst(false, true, false, []byte{0x3b}, R10, mem(RCX, e+regionLen))
				a.jcc(ccA, next)
				if w == 1 {
					a.cmpByteImm(mem(RCX, e+regionWrite), 0)
					a.jcc(ccE, fail)
				}
				if i < len(c.opts.Volatile) && c.opts.Volatile[i] {
					a.jmp(c.step)
					step = true
				} else {
					a.ret()
				}
				a.bind(next)
			}
			a.bind(fail)
			a.pop(R10)
			a.store(mem(R12, offRetAddr), R10, 8)
			a.store(mem(R12, offAddr), R11, 8)
			a.storeImm(mem(R12, offArg), size|int32(w)<<8, 8)
			a.movImm32(RBX, ExitFault)
			a.jmp(c.leave)
		}
	}
	// The access resolved to a volatile entry: save the registers and
	// exit with ExitStep; Go performs the instruction and resumes past
	// the access (Code.Step).
	if !step {
		return
	}
	a.bind(c.step)
	a.pop(R10)
	a.store(mem(R12, offRetAddr), R10, 8)
	a.store(mem(R12, offAddr), R11, 8)
	for i, r := range regMap {
		a.store(mem(R12, int32(offRegs+8*i)), r, 8)
	}
	a.movImm32(RBX, ExitStep)
	a.jmp(c.leave)
}
