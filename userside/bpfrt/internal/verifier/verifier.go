package verifier

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/kushm/kushm/userside/bpfrt/internal/isa"
)

// Limits of the safety model.
const (
	// MaxInstructions is the largest program accepted, in 8-byte slots.
	MaxInstructions = 1 << 17
)

// RawInsn is one 8-byte instruction as written.
type RawInsn struct {
	op       uint8
	dst, src uint8
	off      int16
	imm      int32
}

func (r RawInsn) String() string {
	return fmt.Sprintf("%s op=%#02x dst=r%d src=r%d off=%d imm=%d", mnemonic(r), r.op, r.dst, r.src, r.off, r.imm)
}

// Decode splits raw eBPF code (8-byte little-endian instructions).
func Decode(code []byte) ([]RawInsn, error) {
	if len(code) == 0 {
		return nil, fmt.Errorf("%w: empty program", ErrInvalidProgram)
	}
	if len(code)%8 != 0 {
		return nil, fmt.Errorf("%w: length %d is not a multiple of 8", ErrInvalidProgram, len(code))
	}
	if len(code)/8 > MaxInstructions {
		return nil, fmt.Errorf("%w: %d instructions, more than %d", ErrInvalidProgram, len(code)/8, MaxInstructions)
	}
	out := make([]RawInsn, len(code)/8)
	for i := range out {
		b := code[i*8:]
		//kushm:offsets-ok a BPF instruction (struct bpf_insn), not region bytes
		out[i] = RawInsn{
			op:  b[0],
			dst: b[1] & 0xf,
			src: b[1] >> 4,
			off: int16(binary.LittleEndian.Uint16(b[2:])),
			imm: int32(binary.LittleEndian.Uint32(b[4:])),
		}
	}
	return out, nil
}

// abstract register kinds of the checker.
const (
	kUninit uint8 = iota
	kScalar       // initialised, any value (possibly a pointer: checked at run time)
	kCtx          // context pointer + off
	kStack        // this frame's r10 + off
	kMap          // map handle; off is the map index
)

type absReg struct {
	kind     uint8
	offKnown bool
	off      int64
}

type absState [11]absReg

func joinReg(a, b absReg) absReg {
	if a == b {
		return a
	}
	if a.kind == kUninit || b.kind == kUninit {
		return absReg{}
	}
	if a.kind != b.kind || a.kind == kMap || a.kind == kScalar {
		return absReg{kind: kScalar}
	}
	return absReg{kind: a.kind}
}

type function struct {
	start, end int // [start, end) in slots
	depth      int // bytes of stack to zero on entry
}

func (f *function) length() uint64 { return uint64(f.end - f.start) }

// checker holds the state of one verification.
type checker struct {
	raw     []RawInsn
	env     Env
	res     *Result
	funcs   []function
	funcOf  []int32 // function index of each slot
	second  []bool  // slot is the second half of lddw
	states  []*absState
	escapes []bool // per function: a stack pointer escaped static tracking
	kfuncs  []string
	// maskShifts: accept out-of-range immediate shifts (RFC 9669 mode).
	maskShifts bool
	// depthHint: stack bytes below r10 that helpers may read, per function.
	depthHint []int64
}

func (c *checker) fail(pc int, format string, args ...any) error {
	var s string
	if pc >= 0 && pc < len(c.raw) {
		s = c.raw[pc].String()
	}
	return &VerifierError{PC: pc, Insn: s, Reason: fmt.Sprintf(format, args...)}
}

// check runs the syntactic checks, splits the program into functions,
// runs the data-flow analysis and writes the pre-decoded program.
func (c *checker) check() error {
	n := len(c.raw)
	c.second = make([]bool, n)
	for pc := 0; pc < n; pc++ {
		if c.second[pc] {
			continue
		}
		if err := c.syntax(pc); err != nil {
			return err
		}
		if c.raw[pc].op == ClsLD|SzDW|ModeIMM {
			c.second[pc+1] = true
		}
	}
	// Functions: pc 0 and every local call target.
	starts := map[int]bool{0: true}
	for pc := 0; pc < n; pc++ {
		r := c.raw[pc]
		if c.second[pc] || r.op != ClsJMP|JmpCALL || r.src != PseudoCall {
			continue
		}
		t := pc + 1 + int(r.imm)
		if t < 0 || t >= n || c.second[t] {
			return c.fail(pc, "call target %d outside the program", t)
		}
		starts[t] = true
	}
	var ss []int
	for s := range starts {
		ss = append(ss, s)
	}
	sort.Ints(ss)
	c.funcOf = make([]int32, n)
	for i, s := range ss {
		e := n
		if i+1 < len(ss) {
			e = ss[i+1]
		}
		c.funcs = append(c.funcs, function{start: s, end: e})
		for pc := s; pc < e; pc++ {
			c.funcOf[pc] = int32(i)
		}
		// No fall-through past the end of a function.
		last := e - 1
		if c.second[last] {
			last--
		}
		r := c.raw[last]
		if !(r.op == ClsJMP|JmpEXIT || r.op == ClsJMP|JmpJA || r.op == ClsJMP32|JmpJA) {
			return c.fail(last, "last instruction of the function at %d falls through past its end", s)
		}
	}
	// Jump targets stay inside their function and land on an instruction.
	for pc := 0; pc < n; pc++ {
		if c.second[pc] {
			continue
		}
		if t, ok := c.jumpTarget(pc); ok {
			if t < 0 || t >= n {
				return c.fail(pc, "jump to %d outside the program", t)
			}
			if c.second[t] {
				return c.fail(pc, "jump to %d, the middle of a 64-bit load", t)
			}
			if c.funcOf[t] != c.funcOf[pc] {
				return c.fail(pc, "jump to %d leaves the function", t)
			}
		}
	}
	c.states = make([]*absState, n)
	c.escapes = make([]bool, len(c.funcs))
	for fi := range c.funcs {
		c.flow(fi)
	}
	return c.emit()
}

func (c *checker) jumpTarget(pc int) (int, bool) {
	r := c.raw[pc]
	cls := r.op & 7
	if cls != ClsJMP && cls != ClsJMP32 {
		return 0, false
	}
	code := r.op & 0xf0
	if code == JmpCALL || code == JmpEXIT {
		return 0, false
	}
	if cls == ClsJMP32 && code == JmpJA {
		return pc + 1 + int(r.imm), true
	}
	return pc + 1 + int(r.off), true
}

func validReg(r uint8) bool { return r <= 10 }

// syntax checks opcode and fields of one instruction.
func (c *checker) syntax(pc int) error {
	r := c.raw[pc]
	cls := r.op & 7
	switch cls {
	case ClsALU, ClsALU64:
		code := r.op & 0xf0
		x := r.op&SrcX != 0
		if r.dst > 9 {
			return c.fail(pc, "destination r%d is not writable", r.dst)
		}
		if code > AluEND {
			return c.fail(pc, "unknown ALU operation %#x", code)
		}
		if code == AluEND {
			if cls == ClsALU64 && x {
				return c.fail(pc, "unknown byte swap")
			}
			if r.src != 0 || r.off != 0 {
				return c.fail(pc, "reserved fields of a byte swap are not zero")
			}
			if r.imm != 16 && r.imm != 32 && r.imm != 64 {
				return c.fail(pc, "byte swap width %d is not 16, 32 or 64", r.imm)
			}
			return nil
		}
		if x {
			if !validReg(r.src) {
				return c.fail(pc, "invalid source register r%d", r.src)
			}
			if r.imm != 0 {
				return c.fail(pc, "immediate of a register operation is not zero")
			}
		} else if r.src != 0 {
			return c.fail(pc, "source register of an immediate operation is not zero")
		}
		switch code {
		case AluDIV, AluMOD:
			if r.off != 0 && r.off != 1 {
				return c.fail(pc, "offset %d of a division is not 0 or 1", r.off)
			}
		case AluMOV:
			ok := r.off == 0 || (x && (r.off == 8 || r.off == 16 || (r.off == 32 && cls == ClsALU64)))
			if !ok {
				return c.fail(pc, "invalid sign-extension width %d", r.off)
			}
		case AluNEG:
			if x || r.off != 0 {
				return c.fail(pc, "invalid negation encoding")
			}
		case AluLSH, AluRSH, AluARSH:
			if r.off != 0 {
				return c.fail(pc, "offset of an ALU operation is not zero")
			}
			if !x {
				bits := int32(64)
				if cls == ClsALU {
					bits = 32
				}
				if (r.imm < 0 || r.imm >= bits) && !c.maskShifts {
					return c.fail(pc, "shift by %d out of range 0..%d", r.imm, bits-1)
				}
			}
		default:
			if r.off != 0 {
				return c.fail(pc, "offset of an ALU operation is not zero")
			}
		}
	case ClsJMP, ClsJMP32:
		code := r.op & 0xf0
		x := r.op&SrcX != 0
		switch code {
		case JmpJA:
			if x || r.src != 0 || r.dst != 0 {
				return c.fail(pc, "reserved fields of a jump are not zero")
			}
			if cls == ClsJMP && r.imm != 0 {
				return c.fail(pc, "immediate of ja is not zero")
			}
			if cls == ClsJMP32 && r.off != 0 {
				return c.fail(pc, "offset of gotol is not zero")
			}
		case JmpCALL:
			if cls != ClsJMP {
				return c.fail(pc, "call in the JMP32 class")
			}
			if x {
				return c.fail(pc, "callx (call through a register) is not supported")
			}
			if r.dst != 0 || r.off != 0 {
				return c.fail(pc, "reserved fields of a call are not zero")
			}
			switch r.src {
			case 0:
				if _, ok := c.env.HelperIndex(r.imm); !ok {
					return c.fail(pc, "unknown helper %d", r.imm)
				}
			case PseudoCall:
			case PseudoKfunc:
				if r.imm < 0 || int(r.imm) >= len(c.kfuncs) {
					return c.fail(pc, "kfunc call without a resolved name (load the program from an ELF object)")
				}
			default:
				return c.fail(pc, "unknown call kind %d", r.src)
			}
		case JmpEXIT:
			if cls != ClsJMP || x || r.src != 0 || r.dst != 0 || r.off != 0 || r.imm != 0 {
				return c.fail(pc, "invalid exit encoding")
			}
		case 0xe0, 0xf0:
			return c.fail(pc, "unknown jump operation %#x", code)
		default:
			if !validReg(r.dst) {
				return c.fail(pc, "invalid register r%d", r.dst)
			}
			if x {
				if !validReg(r.src) || r.imm != 0 {
					return c.fail(pc, "invalid register jump encoding")
				}
			} else if r.src != 0 {
				return c.fail(pc, "source register of an immediate jump is not zero")
			}
		}
	case ClsLD:
		if r.op != ClsLD|SzDW|ModeIMM {
			return c.fail(pc, "legacy packet loads (ABS/IND) and unknown loads are not supported")
		}
		if r.dst > 9 || r.off != 0 {
			return c.fail(pc, "invalid 64-bit load encoding")
		}
		if pc+1 >= len(c.raw) {
			return c.fail(pc, "64-bit load without its second half")
		}
		n := c.raw[pc+1]
		if n.op != 0 || n.dst != 0 || n.src != 0 || n.off != 0 {
			return c.fail(pc, "second half of a 64-bit load is not zero")
		}
		switch r.src {
		case 0:
		case PseudoMapFD, PseudoMapValue:
			if r.imm < 0 || int(r.imm) >= c.env.NumMaps() {
				return c.fail(pc, "unknown map %d", r.imm)
			}
			if r.src == PseudoMapValue {
				size, ok := c.env.ArrayBytes(int(r.imm))
				if !ok {
					return c.fail(pc, "direct value access needs an array map")
				}
				if uint64(uint32(n.imm)) >= uint64(size) {
					return c.fail(pc, "direct value offset %d outside the map", uint32(n.imm))
				}
			}
		default:
			return c.fail(pc, "64-bit load of kind %d is not supported", r.src)
		}
	case ClsLDX:
		mode := r.op & 0xe0
		if mode != ModeMEM && !(mode == ModeMEMSX && r.op&0x18 != SzDW) {
			return c.fail(pc, "unknown load mode")
		}
		if r.dst > 9 || !validReg(r.src) || r.imm != 0 {
			return c.fail(pc, "invalid load encoding")
		}
	case ClsST:
		if r.op&0xe0 != ModeMEM || !validReg(r.dst) || r.src != 0 {
			return c.fail(pc, "invalid store encoding")
		}
	case ClsSTX:
		mode := r.op & 0xe0
		if !validReg(r.dst) || !validReg(r.src) {
			return c.fail(pc, "invalid register")
		}
		switch mode {
		case ModeMEM:
			if r.imm != 0 {
				return c.fail(pc, "immediate of a register store is not zero")
			}
		case ModeATOMIC:
			sz := r.op & 0x18
			if sz != SzW && sz != SzDW {
				return c.fail(pc, "atomic operation on 8 or 16 bits")
			}
			switch r.imm {
			case AtomicADD, AtomicOR, AtomicAND, AtomicXOR,
				AtomicADD | AtomicFETCH, AtomicOR | AtomicFETCH, AtomicAND | AtomicFETCH, AtomicXOR | AtomicFETCH,
				AtomicXCHG, AtomicCMPXCHG:
			default:
				return c.fail(pc, "unknown atomic operation %#x", r.imm)
			}
			if r.imm&AtomicFETCH != 0 && r.imm != AtomicCMPXCHG && r.src == 10 {
				return c.fail(pc, "atomic fetch into r10")
			}
		default:
			return c.fail(pc, "unknown store mode")
		}
	}
	return nil
}

// entryState is the abstract state on entry to function fi.
func (c *checker) entryState(fi int) absState {
	var s absState
	if fi == 0 {
		s[1] = absReg{kind: kCtx, offKnown: true}
		s[2] = absReg{kind: kScalar}
	} else {
		for i := 1; i <= 5; i++ {
			s[i] = absReg{kind: kScalar}
		}
	}
	s[10] = absReg{kind: kStack, offKnown: true}
	return s
}

func (c *checker) merge(pc int, s *absState, work *[]int) {
	old := c.states[pc]
	if old == nil {
		ns := *s
		c.states[pc] = &ns
		*work = append(*work, pc)
		return
	}
	changed := false
	for i := range old {
		j := joinReg(old[i], s[i])
		if j != old[i] {
			old[i] = j
			changed = true
		}
	}
	if changed {
		*work = append(*work, pc)
	}
}

// flow runs the abstract interpretation of function fi to a fixpoint.
func (c *checker) flow(fi int) {
	f := c.funcs[fi]
	entry := c.entryState(fi)
	work := []int{}
	c.merge(f.start, &entry, &work)
	for len(work) > 0 {
		pc := work[len(work)-1]
		work = work[:len(work)-1]
		s := *c.states[pc]
		c.transfer(pc, &s, fi)
		r := c.raw[pc]
		cls := r.op & 7
		next := pc + 1
		if r.op == ClsLD|SzDW|ModeIMM {
			next = pc + 2
		}
		if cls == ClsJMP || cls == ClsJMP32 {
			code := r.op & 0xf0
			if code == JmpEXIT {
				continue
			}
			if t, ok := c.jumpTarget(pc); ok {
				c.merge(t, &s, &work)
				if code == JmpJA {
					continue
				}
			}
		}
		if next < f.end {
			c.merge(next, &s, &work)
		}
	}
}

func (c *checker) escape(fi int, r absReg) {
	if r.kind == kStack {
		c.escapes[fi] = true
	}
}

// transfer applies instruction pc to s (no checks: emit checks the final states).
func (c *checker) transfer(pc int, s *absState, fi int) {
	r := c.raw[pc]
	cls := r.op & 7
	switch cls {
	case ClsALU64, ClsALU:
		code := r.op & 0xf0
		x := r.op&SrcX != 0
		d := &s[r.dst]
		if cls == ClsALU64 && code == AluMOV && x && r.off == 0 {
			*d = s[r.src]
			return
		}
		if cls == ClsALU64 && !x && (code == AluADD || code == AluSUB) && (d.kind == kCtx || d.kind == kStack) {
			if d.offKnown {
				if code == AluADD {
					d.off += int64(r.imm)
				} else {
					d.off -= int64(r.imm)
				}
				if d.off > math.MaxInt32 || d.off < math.MinInt32 {
					d.offKnown = false
				}
			}
			return
		}
		if cls == ClsALU64 && x && code == AluADD && (d.kind == kCtx || d.kind == kStack) && s[r.src].kind == kScalar {
			d.offKnown = false
			return
		}
		c.escape(fi, *d)
		if x {
			c.escape(fi, s[r.src])
		}
		*d = absReg{kind: kScalar}
	case ClsLD:
		switch r.src {
		case PseudoMapFD:
			s[r.dst] = absReg{kind: kMap, offKnown: true, off: int64(r.imm)}
		default:
			s[r.dst] = absReg{kind: kScalar}
		}
	case ClsLDX:
		s[r.dst] = absReg{kind: kScalar}
	case ClsSTX:
		c.escape(fi, s[r.src])
		if r.op&0xe0 == ModeATOMIC {
			if r.imm == AtomicCMPXCHG {
				s[0] = absReg{kind: kScalar}
			} else if r.imm&AtomicFETCH != 0 {
				s[r.src] = absReg{kind: kScalar}
			}
		}
	case ClsJMP:
		if r.op&0xf0 == JmpCALL {
			if r.src == PseudoCall {
				for i := 1; i <= 5; i++ {
					c.escape(fi, s[i])
				}
			}
			s[0] = absReg{kind: kScalar}
			for i := 1; i <= 5; i++ {
				s[i] = absReg{}
			}
		}
	}
}

func sizeOf(op uint8) int64 {
	switch op & 0x18 {
	case SzB:
		return 1
	case SzH:
		return 2
	case SzW:
		return 4
	}
	return 8
}

// emit checks every reachable instruction against its final abstract state
// and writes the pre-decoded program.
func (c *checker) emit() error {
	n := len(c.raw)
	out := make([]isa.Insn, n)
	depth := make([]int64, len(c.funcs))
	for pc := 0; pc < n; pc++ {
		st := c.states[pc]
		if st == nil || c.second[pc] {
			continue // unreachable: stays isa.OpInvalid and is never executed
		}
		fi := int(c.funcOf[pc])
		r := c.raw[pc]
		in := &out[pc]
		in.Dst, in.Src = r.dst, r.src
		in.Off = int32(r.off)
		need := func(regs ...uint8) error {
			for _, reg := range regs {
				if st[reg].kind == kUninit {
					return c.fail(pc, "r%d is read before it is initialised", reg)
				}
			}
			return nil
		}
		cls := r.op & 7
		switch cls {
		case ClsALU64, ClsALU:
			if err := c.emitALU(pc, r, in, need); err != nil {
				return err
			}
		case ClsJMP, ClsJMP32:
			if err := c.emitJump(pc, r, in, st, need); err != nil {
				return err
			}
		case ClsLD:
			in.Op = isa.OpLddw
			lo := uint64(uint32(r.imm))
			hi := uint64(uint32(c.raw[pc+1].imm))
			switch r.src {
			case 0:
				in.Imm = hi<<32 | lo
			case PseudoMapFD:
				in.Imm = c.env.MapHandle(int(r.imm))
			case PseudoMapValue:
				in.Imm = c.env.ArrayBase(int(r.imm)) + hi
			}
		case ClsLDX, ClsST, ClsSTX:
			base := r.src
			if cls != ClsLDX {
				base = r.dst
			}
			if err := need(base); err != nil {
				return err
			}
			if cls == ClsSTX {
				if err := need(r.src); err != nil {
					return err
				}
			}
			b := st[base]
			size := sizeOf(r.op)
			mode := r.op & 0xe0
			if b.kind == kMap {
				return c.fail(pc, "r%d is a map pointer and cannot be dereferenced", base)
			}
			if mode == ModeATOMIC {
				in.Op = isa.OpAtomic
				in.Size = uint8(size)
				in.Imm = uint64(r.imm)
				if r.imm == AtomicCMPXCHG {
					if err := need(0); err != nil {
						return err
					}
				}
				if b.kind == kStack {
					c.escapes[fi] = true
				}
				continue
			}
			sx := mode == ModeMEMSX
			var kindIdx uint8 // 0 generic, 1 ctx, 2 stack
			switch {
			case b.kind == kCtx && b.offKnown:
				o := b.off + int64(r.off)
				if o < 0 {
					return c.fail(pc, "context access at negative offset %d", o)
				}
				if o > math.MaxInt32 {
					return c.fail(pc, "context access at offset %d", o)
				}
				kindIdx = 1
				in.Off = int32(o)
				in.Imm = uint64(o + size)
			case b.kind == kStack && b.offKnown:
				o := b.off + int64(r.off)
				if o < -isa.StackSize || o+size > 0 {
					return c.fail(pc, "stack access at r10%+d (%d bytes) outside the %d-byte frame", o, size, isa.StackSize)
				}
				if -o > depth[fi] {
					depth[fi] = -o
				}
				kindIdx = 2
				in.Off = int32(o)
			case b.kind == kStack:
				c.escapes[fi] = true
			}
			in.Op = memOp(cls, r.op&0x18, sx, kindIdx)
			if cls == ClsST {
				in.Jt = r.imm
			}
		}
	}
	for fi := range c.funcs {
		d := depth[fi]
		if c.depthHint != nil && c.depthHint[fi] > d {
			d = c.depthHint[fi]
		}
		if c.escapes[fi] {
			d = isa.StackSize
		}
		c.funcs[fi].depth = int(d)
	}
	c.res.Plain = append([]isa.Insn(nil), out...)
	c.fuse(out)
	c.res.Insns = out
	for _, f := range c.funcs {
		c.res.Funcs = append(c.res.Funcs, isa.Func{Start: f.start, End: f.end, Depth: f.depth})
	}
	return nil
}

func memOp(cls, sz uint8, sx bool, kind uint8) uint8 {
	var base uint8
	switch cls {
	case ClsLDX:
		base = [3]uint8{isa.OpLdxB, isa.OpLdxCtxB, isa.OpLdxStkB}[kind]
		if sx {
			base += 4 // SB, SH, SW follow DW
			switch sz {
			case SzB:
				return base
			case SzH:
				return base + 1
			}
			return base + 2
		}
	case ClsST:
		base = [3]uint8{isa.OpStB, isa.OpStCtxB, isa.OpStStkB}[kind]
	case ClsSTX:
		base = [3]uint8{isa.OpStxB, isa.OpStxCtxB, isa.OpStxStkB}[kind]
	}
	switch sz {
	case SzB:
		return base
	case SzH:
		return base + 1
	case SzW:
		return base + 2
	}
	return base + 3
}

func (c *checker) emitALU(pc int, r RawInsn, in *isa.Insn, need func(...uint8) error) error {
	code := r.op & 0xf0
	x := r.op&SrcX != 0
	is64 := r.op&7 == ClsALU64
	if code == AluEND {
		if err := need(r.dst); err != nil {
			return err
		}
		switch {
		case is64 || x: // bswap, or to big endian
			in.Op = [3]uint8{isa.OpBswap16, isa.OpBswap32, isa.OpBswap64}[widthIdx(r.imm)]
		default:
			in.Op = [3]uint8{isa.OpTrunc16, isa.OpTrunc32, isa.OpNop}[widthIdx(r.imm)]
		}
		return nil
	}
	if code != AluMOV {
		if err := need(r.dst); err != nil {
			return err
		}
	}
	if x {
		if err := need(r.src); err != nil {
			return err
		}
	}
	type pair = struct{ k, x uint8 }
	var t map[uint8]pair
	if is64 {
		t = alu64Ops
	} else {
		t = alu32Ops
	}
	p := t[code]
	switch {
	case (code == AluDIV || code == AluMOD) && r.off == 1:
		p = pair{p.k + 2, p.x + 2} // the signed forms follow the unsigned ones
	case code == AluMOV && x && r.off != 0:
		switch r.off {
		case 8:
			p.x = isa.OpMovSX8_64
		case 16:
			p.x = isa.OpMovSX16_64
		case 32:
			p.x = isa.OpMovSX32_64
		}
		if !is64 {
			p.x += isa.OpMovSX8_32 - isa.OpMovSX8_64
		}
	}
	if x {
		in.Op = p.x
	} else {
		in.Op = p.k
		if is64 {
			in.Imm = uint64(int64(r.imm))
		} else {
			in.Imm = uint64(uint32(r.imm))
		}
	}
	return nil
}

func widthIdx(imm int32) int {
	switch imm {
	case 16:
		return 0
	case 32:
		return 1
	}
	return 2
}

var alu64Ops = map[uint8]struct{ k, x uint8 }{
	AluADD: {isa.OpAdd64K, isa.OpAdd64X}, AluSUB: {isa.OpSub64K, isa.OpSub64X}, AluMUL: {isa.OpMul64K, isa.OpMul64X},
	AluDIV: {isa.OpDiv64K, isa.OpDiv64X}, AluOR: {isa.OpOr64K, isa.OpOr64X}, AluAND: {isa.OpAnd64K, isa.OpAnd64X},
	AluLSH: {isa.OpLsh64K, isa.OpLsh64X}, AluRSH: {isa.OpRsh64K, isa.OpRsh64X}, AluNEG: {isa.OpNeg64, isa.OpNeg64},
	AluMOD: {isa.OpMod64K, isa.OpMod64X}, AluXOR: {isa.OpXor64K, isa.OpXor64X}, AluMOV: {isa.OpMov64K, isa.OpMov64X},
	AluARSH: {isa.OpArsh64K, isa.OpArsh64X},
}

var alu32Ops = map[uint8]struct{ k, x uint8 }{
	AluADD: {isa.OpAdd32K, isa.OpAdd32X}, AluSUB: {isa.OpSub32K, isa.OpSub32X}, AluMUL: {isa.OpMul32K, isa.OpMul32X},
	AluDIV: {isa.OpDiv32K, isa.OpDiv32X}, AluOR: {isa.OpOr32K, isa.OpOr32X}, AluAND: {isa.OpAnd32K, isa.OpAnd32X},
	AluLSH: {isa.OpLsh32K, isa.OpLsh32X}, AluRSH: {isa.OpRsh32K, isa.OpRsh32X}, AluNEG: {isa.OpNeg32, isa.OpNeg32},
	AluMOD: {isa.OpMod32K, isa.OpMod32X}, AluXOR: {isa.OpXor32K, isa.OpXor32X}, AluMOV: {isa.OpMov32K, isa.OpMov32X},
	AluARSH: {isa.OpArsh32K, isa.OpArsh32X},
}

// condition op for a jump code: index into the op table, in isa.OpJeq64K order.
var jmpCodeIdx = map[uint8]uint8{
	JmpJEQ: 0, JmpJGT: 1, JmpJGE: 2, JmpJSET: 3, JmpJNE: 4, JmpJSGT: 5,
	JmpJSGE: 6, JmpJLT: 7, JmpJLE: 8, JmpJSLT: 9, JmpJSLE: 10,
}

func (c *checker) emitJump(pc int, r RawInsn, in *isa.Insn, st *absState, need func(...uint8) error) error {
	code := r.op & 0xf0
	x := r.op&SrcX != 0
	switch code {
	case JmpEXIT:
		in.Op = isa.OpExit
		return need(0)
	case JmpCALL:
		switch r.src {
		case PseudoCall:
			t := pc + 1 + int(r.imm)
			in.Op = isa.OpCallLocal
			in.Jt = int32(t)
			in.Off = c.funcOf[t]
			return nil
		case PseudoKfunc:
			idx, ok := c.env.HelperByName(c.kfuncs[r.imm])
			if !ok {
				hint := ""
				if strings.HasPrefix(c.kfuncs[r.imm], "bpf_kushm_") {
					hint = " (the bpf_kushm_* kfuncs need a region: Options.Kushm, or --region on the command line)"
				}
				return c.fail(pc, "kfunc %q has no userspace implementation%s", c.kfuncs[r.imm], hint)
			}
			in.Op = isa.OpCall
			in.Jt = int32(idx)
		default:
			idx, _ := c.env.HelperIndex(r.imm)
			in.Op = isa.OpCall
			in.Jt = int32(idx)
		}
		h := c.env.Helper(int(in.Jt))
		for i, a := range h.Args {
			reg := uint8(i + 1)
			if err := need(reg); err != nil {
				return c.fail(pc, "argument %d of %s: r%d is read before it is initialised", i+1, h.Name, reg)
			}
			if a == ArgMap && st[reg].kind != kMap {
				return c.fail(pc, "argument %d of %s: r%d is not a map pointer", i+1, h.Name, reg)
			}
			if a == ArgMem || a == ArgPtr {
				if st[reg].kind == kMap {
					return c.fail(pc, "argument %d of %s: r%d is a map, not memory", i+1, h.Name, reg)
				}
				if st[reg].kind == kStack {
					fi := c.funcOf[pc]
					if st[reg].offKnown && st[reg].off >= -isa.StackSize && st[reg].off < 0 {
						// helper memory runs up from the pointer to at most r10
						// (checked at run time); zero from there.
						c.noteDepth(int(fi), -st[reg].off)
					} else {
						c.escapes[fi] = true
					}
				}
			}
		}
		return nil
	}
	t, _ := c.jumpTarget(pc)
	in.Jt = int32(t)
	if code == JmpJA {
		in.Op = isa.OpJa
		if t <= pc {
			in.Op = isa.OpBack
			in.Size = isa.OpJa
			in.Off = int32(pc - t + 1)
		}
		return nil
	}
	if err := need(r.dst); err != nil {
		return err
	}
	if x {
		if err := need(r.src); err != nil {
			return err
		}
	}
	op := isa.OpJeq64K + 2*jmpCodeIdx[code]
	if r.op&7 == ClsJMP32 {
		op += isa.OpJeq32K - isa.OpJeq64K
		in.Imm = uint64(uint32(r.imm))
	} else {
		in.Imm = uint64(int64(r.imm))
	}
	if x {
		op++
	}
	in.Op = op
	if t <= pc {
		in.Op = isa.OpBack
		in.Size = op
		in.Off = int32(pc - t + 1) // instructions of one iteration
	}
	return nil
}

// depthHint records stack bytes a helper may touch below r10.
func (c *checker) noteDepth(fi int, d int64) {
	if c.depthHint == nil {
		c.depthHint = make([]int64, len(c.funcs))
	}
	if d > c.depthHint[fi] {
		c.depthHint[fi] = d
	}
}

// fuse rewrites "ldxdw rD, ctx[k]; jcc rD, imm" into one op when the jump
// is not itself a jump target.
func (c *checker) fuse(out []isa.Insn) {
	targets := make([]bool, len(out)+1)
	for pc := range out {
		switch o := out[pc].Op; {
		case o >= isa.OpJa && o <= isa.OpBack, o == isa.OpCallLocal:
			if int(out[pc].Jt) < len(targets) {
				targets[out[pc].Jt] = true
			}
		}
	}
	// ldx rD, ctx[k]; mov rT, K; j<cc> rT, rD (or rD, rT) -> isa.OpF3.
	for pc := 0; pc+2 < len(out); pc++ {
		a, b, j := &out[pc], &out[pc+1], &out[pc+2]
		if a.Op != isa.OpLdxCtxDW || b.Op != isa.OpMov64K || targets[pc+1] || targets[pc+2] || b.Dst == a.Dst {
			continue
		}
		if j.Op < isa.OpJeq64K || j.Op > isa.OpJsle64X || (j.Op-isa.OpJeq64K)%2 != 1 {
			continue
		}
		k := j.Op - 1 // the K form of the condition
		switch {
		case j.Dst == a.Dst && j.Src == b.Dst:
		case j.Dst == b.Dst && j.Src == a.Dst:
			k = swapCond[k]
		default:
			continue
		}
		a.Op = isa.OpF3
		a.Src = b.Dst
		a.Imm = b.Imm
		a.Size = k
		a.Jt = j.Jt
	}
	for pc := 0; pc+1 < len(out); pc++ {
		a, b := &out[pc], &out[pc+1]
		if a.Op != isa.OpLdxCtxDW || targets[pc+1] {
			continue
		}
		if b.Op < isa.OpJeq64K || b.Op > isa.OpJsle64X || (b.Op-isa.OpJeq64K)%2 != 0 || b.Dst != a.Dst {
			continue
		}
		// a keeps dst and the ctx offset; the jump's target and immediate
		// move in. The next slot is skipped at run time.
		a.Op = isa.OpFJeq + (b.Op-isa.OpJeq64K)/2
		a.Jt = b.Jt
		a.Imm = b.Imm
	}
}

// swapCond maps the K condition of "K <cc> x" to that of "x <cc'> K".
var swapCond = map[uint8]uint8{
	isa.OpJeq64K: isa.OpJeq64K, isa.OpJne64K: isa.OpJne64K, isa.OpJset64K: isa.OpJset64K,
	isa.OpJgt64K: isa.OpJlt64K, isa.OpJlt64K: isa.OpJgt64K, isa.OpJge64K: isa.OpJle64K, isa.OpJle64K: isa.OpJge64K,
	isa.OpJsgt64K: isa.OpJslt64K, isa.OpJslt64K: isa.OpJsgt64K, isa.OpJsge64K: isa.OpJsle64K, isa.OpJsle64K: isa.OpJsge64K,
}
