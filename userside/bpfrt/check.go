package bpfrt

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
	// StackSize is the stack of one frame, in bytes.
	StackSize = isa.StackSize
	// MaxCallDepth is the number of frames (main program included).
	MaxCallDepth = isa.MaxCallDepth
	// DefaultBudget is the default instruction budget of one run.
	DefaultBudget = 1 << 26
)

type rawInsn struct {
	op       uint8
	dst, src uint8
	off      int16
	imm      int32
}

func (r rawInsn) String() string {
	return fmt.Sprintf("%s op=%#02x dst=r%d src=r%d off=%d imm=%d", mnemonic(r), r.op, r.dst, r.src, r.off, r.imm)
}

func decodeRaw(code []byte) ([]rawInsn, error) {
	if len(code) == 0 {
		return nil, fmt.Errorf("%w: empty program", ErrInvalidProgram)
	}
	if len(code)%8 != 0 {
		return nil, fmt.Errorf("%w: length %d is not a multiple of 8", ErrInvalidProgram, len(code))
	}
	if len(code)/8 > MaxInstructions {
		return nil, fmt.Errorf("%w: %d instructions, more than %d", ErrInvalidProgram, len(code)/8, MaxInstructions)
	}
	out := make([]rawInsn, len(code)/8)
	for i := range out {
		b := code[i*8:]
		//kushm:offsets-ok a BPF instruction (struct bpf_insn), not region bytes
		out[i] = rawInsn{
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
	raw     []rawInsn
	p       *Program
	funcs   []function
	funcOf  []int32 // function index of each slot
	second  []bool  // slot is the second half of lddw
	states  []*absState
	escapes []bool // per function: a stack pointer escaped static tracking
	kfuncs  []string
	plain   []insn // the instructions before fusion (the JIT's input)
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
		if c.raw[pc].op == clsLD|szDW|modeIMM {
			c.second[pc+1] = true
		}
	}
	// Functions: pc 0 and every local call target.
	starts := map[int]bool{0: true}
	for pc := 0; pc < n; pc++ {
		r := c.raw[pc]
		if c.second[pc] || r.op != clsJMP|jmpCALL || r.src != pseudoCall {
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
		if !(r.op == clsJMP|jmpEXIT || r.op == clsJMP|jmpJA || r.op == clsJMP32|jmpJA) {
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
	if cls != clsJMP && cls != clsJMP32 {
		return 0, false
	}
	code := r.op & 0xf0
	if code == jmpCALL || code == jmpEXIT {
		return 0, false
	}
	if cls == clsJMP32 && code == jmpJA {
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
	case clsALU, clsALU64:
		code := r.op & 0xf0
		x := r.op&srcX != 0
		if r.dst > 9 {
			return c.fail(pc, "destination r%d is not writable", r.dst)
		}
		if code > aluEND {
			return c.fail(pc, "unknown ALU operation %#x", code)
		}
		if code == aluEND {
			if cls == clsALU64 && x {
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
		case aluDIV, aluMOD:
			if r.off != 0 && r.off != 1 {
				return c.fail(pc, "offset %d of a division is not 0 or 1", r.off)
			}
		case aluMOV:
			ok := r.off == 0 || (x && (r.off == 8 || r.off == 16 || (r.off == 32 && cls == clsALU64)))
			if !ok {
				return c.fail(pc, "invalid sign-extension width %d", r.off)
			}
		case aluNEG:
			if x || r.off != 0 {
				return c.fail(pc, "invalid negation encoding")
			}
		case aluLSH, aluRSH, aluARSH:
			if r.off != 0 {
				return c.fail(pc, "offset of an ALU operation is not zero")
			}
			if !x {
				bits := int32(64)
				if cls == clsALU {
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
	case clsJMP, clsJMP32:
		code := r.op & 0xf0
		x := r.op&srcX != 0
		switch code {
		case jmpJA:
			if x || r.src != 0 || r.dst != 0 {
				return c.fail(pc, "reserved fields of a jump are not zero")
			}
			if cls == clsJMP && r.imm != 0 {
				return c.fail(pc, "immediate of ja is not zero")
			}
			if cls == clsJMP32 && r.off != 0 {
				return c.fail(pc, "offset of gotol is not zero")
			}
		case jmpCALL:
			if cls != clsJMP {
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
				if _, ok := c.p.helperIndex(r.imm); !ok {
					return c.fail(pc, "unknown helper %d", r.imm)
				}
			case pseudoCall:
			case pseudoKfunc:
				if r.imm < 0 || int(r.imm) >= len(c.kfuncs) {
					return c.fail(pc, "kfunc call without a resolved name (load the program from an ELF object)")
				}
			default:
				return c.fail(pc, "unknown call kind %d", r.src)
			}
		case jmpEXIT:
			if cls != clsJMP || x || r.src != 0 || r.dst != 0 || r.off != 0 || r.imm != 0 {
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
	case clsLD:
		if r.op != clsLD|szDW|modeIMM {
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
		case pseudoMapFD, pseudoMapValue:
			if r.imm < 0 || int(r.imm) >= len(c.p.maps) {
				return c.fail(pc, "unknown map %d", r.imm)
			}
			if r.src == pseudoMapValue {
				m := c.p.maps[r.imm]
				if _, ok := m.(*ArrayMap); !ok {
					return c.fail(pc, "direct value access needs an array map")
				}
				if uint64(uint32(n.imm)) >= uint64(len(m.(*ArrayMap).data)) {
					return c.fail(pc, "direct value offset %d outside the map", uint32(n.imm))
				}
			}
		default:
			return c.fail(pc, "64-bit load of kind %d is not supported", r.src)
		}
	case clsLDX:
		mode := r.op & 0xe0
		if mode != modeMEM && !(mode == modeMEMSX && r.op&0x18 != szDW) {
			return c.fail(pc, "unknown load mode")
		}
		if r.dst > 9 || !validReg(r.src) || r.imm != 0 {
			return c.fail(pc, "invalid load encoding")
		}
	case clsST:
		if r.op&0xe0 != modeMEM || !validReg(r.dst) || r.src != 0 {
			return c.fail(pc, "invalid store encoding")
		}
	case clsSTX:
		mode := r.op & 0xe0
		if !validReg(r.dst) || !validReg(r.src) {
			return c.fail(pc, "invalid register")
		}
		switch mode {
		case modeMEM:
			if r.imm != 0 {
				return c.fail(pc, "immediate of a register store is not zero")
			}
		case modeATOMIC:
			sz := r.op & 0x18
			if sz != szW && sz != szDW {
				return c.fail(pc, "atomic operation on 8 or 16 bits")
			}
			switch r.imm {
			case atomicADD, atomicOR, atomicAND, atomicXOR,
				atomicADD | atomicFETCH, atomicOR | atomicFETCH, atomicAND | atomicFETCH, atomicXOR | atomicFETCH,
				atomicXCHG, atomicCMPXCHG:
			default:
				return c.fail(pc, "unknown atomic operation %#x", r.imm)
			}
			if r.imm&atomicFETCH != 0 && r.imm != atomicCMPXCHG && r.src == 10 {
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
		if r.op == clsLD|szDW|modeIMM {
			next = pc + 2
		}
		if cls == clsJMP || cls == clsJMP32 {
			code := r.op & 0xf0
			if code == jmpEXIT {
				continue
			}
			if t, ok := c.jumpTarget(pc); ok {
				c.merge(t, &s, &work)
				if code == jmpJA {
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
	case clsALU64, clsALU:
		code := r.op & 0xf0
		x := r.op&srcX != 0
		d := &s[r.dst]
		if cls == clsALU64 && code == aluMOV && x && r.off == 0 {
			*d = s[r.src]
			return
		}
		if cls == clsALU64 && !x && (code == aluADD || code == aluSUB) && (d.kind == kCtx || d.kind == kStack) {
			if d.offKnown {
				if code == aluADD {
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
		if cls == clsALU64 && x && code == aluADD && (d.kind == kCtx || d.kind == kStack) && s[r.src].kind == kScalar {
			d.offKnown = false
			return
		}
		c.escape(fi, *d)
		if x {
			c.escape(fi, s[r.src])
		}
		*d = absReg{kind: kScalar}
	case clsLD:
		switch r.src {
		case pseudoMapFD:
			s[r.dst] = absReg{kind: kMap, offKnown: true, off: int64(r.imm)}
		default:
			s[r.dst] = absReg{kind: kScalar}
		}
	case clsLDX:
		s[r.dst] = absReg{kind: kScalar}
	case clsSTX:
		c.escape(fi, s[r.src])
		if r.op&0xe0 == modeATOMIC {
			if r.imm == atomicCMPXCHG {
				s[0] = absReg{kind: kScalar}
			} else if r.imm&atomicFETCH != 0 {
				s[r.src] = absReg{kind: kScalar}
			}
		}
	case clsJMP:
		if r.op&0xf0 == jmpCALL {
			if r.src == pseudoCall {
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
	case szB:
		return 1
	case szH:
		return 2
	case szW:
		return 4
	}
	return 8
}

// emit checks every reachable instruction against its final abstract state
// and writes the pre-decoded program.
func (c *checker) emit() error {
	n := len(c.raw)
	out := make([]insn, n)
	depth := make([]int64, len(c.funcs))
	for pc := 0; pc < n; pc++ {
		st := c.states[pc]
		if st == nil || c.second[pc] {
			continue // unreachable: stays opInvalid and is never executed
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
		case clsALU64, clsALU:
			if err := c.emitALU(pc, r, in, need); err != nil {
				return err
			}
		case clsJMP, clsJMP32:
			if err := c.emitJump(pc, r, in, st, need); err != nil {
				return err
			}
		case clsLD:
			in.Op = opLddw
			lo := uint64(uint32(r.imm))
			hi := uint64(uint32(c.raw[pc+1].imm))
			switch r.src {
			case 0:
				in.Imm = hi<<32 | lo
			case pseudoMapFD:
				in.Imm = mapHandle(int(r.imm))
			case pseudoMapValue:
				in.Imm = c.p.maps[r.imm].(*ArrayMap).base() + hi
			}
		case clsLDX, clsST, clsSTX:
			base := r.src
			if cls != clsLDX {
				base = r.dst
			}
			if err := need(base); err != nil {
				return err
			}
			if cls == clsSTX {
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
			if mode == modeATOMIC {
				in.Op = opAtomic
				in.Size = uint8(size)
				in.Imm = uint64(r.imm)
				if r.imm == atomicCMPXCHG {
					if err := need(0); err != nil {
						return err
					}
				}
				if b.kind == kStack {
					c.escapes[fi] = true
				}
				continue
			}
			sx := mode == modeMEMSX
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
				if o < -StackSize || o+size > 0 {
					return c.fail(pc, "stack access at r10%+d (%d bytes) outside the %d-byte frame", o, size, StackSize)
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
			if cls == clsST {
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
			d = StackSize
		}
		c.funcs[fi].depth = int(d)
	}
	c.plain = append([]insn(nil), out...)
	c.fuse(out)
	c.p.insns = out
	c.p.funcs = c.funcs
	return nil
}

func memOp(cls, sz uint8, sx bool, kind uint8) uint8 {
	var base uint8
	switch cls {
	case clsLDX:
		base = [3]uint8{opLdxB, opLdxCtxB, opLdxStkB}[kind]
		if sx {
			base += 4 // SB, SH, SW follow DW
			switch sz {
			case szB:
				return base
			case szH:
				return base + 1
			}
			return base + 2
		}
	case clsST:
		base = [3]uint8{opStB, opStCtxB, opStStkB}[kind]
	case clsSTX:
		base = [3]uint8{opStxB, opStxCtxB, opStxStkB}[kind]
	}
	switch sz {
	case szB:
		return base
	case szH:
		return base + 1
	case szW:
		return base + 2
	}
	return base + 3
}

func (c *checker) emitALU(pc int, r rawInsn, in *insn, need func(...uint8) error) error {
	code := r.op & 0xf0
	x := r.op&srcX != 0
	is64 := r.op&7 == clsALU64
	if code == aluEND {
		if err := need(r.dst); err != nil {
			return err
		}
		switch {
		case is64 || x: // bswap, or to big endian
			in.Op = [3]uint8{opBswap16, opBswap32, opBswap64}[widthIdx(r.imm)]
		default:
			in.Op = [3]uint8{opTrunc16, opTrunc32, opNop}[widthIdx(r.imm)]
		}
		return nil
	}
	if code != aluMOV {
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
	case (code == aluDIV || code == aluMOD) && r.off == 1:
		p = pair{p.k + 2, p.x + 2} // the signed forms follow the unsigned ones
	case code == aluMOV && x && r.off != 0:
		switch r.off {
		case 8:
			p.x = opMovSX8_64
		case 16:
			p.x = opMovSX16_64
		case 32:
			p.x = opMovSX32_64
		}
		if !is64 {
			p.x += opMovSX8_32 - opMovSX8_64
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
	aluADD: {opAdd64K, opAdd64X}, aluSUB: {opSub64K, opSub64X}, aluMUL: {opMul64K, opMul64X},
	aluDIV: {opDiv64K, opDiv64X}, aluOR: {opOr64K, opOr64X}, aluAND: {opAnd64K, opAnd64X},
	aluLSH: {opLsh64K, opLsh64X}, aluRSH: {opRsh64K, opRsh64X}, aluNEG: {opNeg64, opNeg64},
	aluMOD: {opMod64K, opMod64X}, aluXOR: {opXor64K, opXor64X}, aluMOV: {opMov64K, opMov64X},
	aluARSH: {opArsh64K, opArsh64X},
}

var alu32Ops = map[uint8]struct{ k, x uint8 }{
	aluADD: {opAdd32K, opAdd32X}, aluSUB: {opSub32K, opSub32X}, aluMUL: {opMul32K, opMul32X},
	aluDIV: {opDiv32K, opDiv32X}, aluOR: {opOr32K, opOr32X}, aluAND: {opAnd32K, opAnd32X},
	aluLSH: {opLsh32K, opLsh32X}, aluRSH: {opRsh32K, opRsh32X}, aluNEG: {opNeg32, opNeg32},
	aluMOD: {opMod32K, opMod32X}, aluXOR: {opXor32K, opXor32X}, aluMOV: {opMov32K, opMov32X},
	aluARSH: {opArsh32K, opArsh32X},
}

// condition op for a jump code: index into the op table, in opJeq64K order.
var jmpCodeIdx = map[uint8]uint8{
	jmpJEQ: 0, jmpJGT: 1, jmpJGE: 2, jmpJSET: 3, jmpJNE: 4, jmpJSGT: 5,
	jmpJSGE: 6, jmpJLT: 7, jmpJLE: 8, jmpJSLT: 9, jmpJSLE: 10,
}

func (c *checker) emitJump(pc int, r rawInsn, in *insn, st *absState, need func(...uint8) error) error {
	code := r.op & 0xf0
	x := r.op&srcX != 0
	switch code {
	case jmpEXIT:
		in.Op = opExit
		return need(0)
	case jmpCALL:
		switch r.src {
		case pseudoCall:
			t := pc + 1 + int(r.imm)
			in.Op = opCallLocal
			in.Jt = int32(t)
			in.Off = c.funcOf[t]
			return nil
		case pseudoKfunc:
			idx, ok := c.p.helperByName(c.kfuncs[r.imm])
			if !ok {
				hint := ""
				if strings.HasPrefix(c.kfuncs[r.imm], "bpf_kushm_") {
					hint = " (the bpf_kushm_* kfuncs need a region: Options.Kushm, or --region on the command line)"
				}
				return c.fail(pc, "kfunc %q has no userspace implementation%s", c.kfuncs[r.imm], hint)
			}
			in.Op = opCall
			in.Jt = int32(idx)
		default:
			idx, _ := c.p.helperIndex(r.imm)
			in.Op = opCall
			in.Jt = int32(idx)
		}
		h := c.p.helpers[in.Jt]
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
					if st[reg].offKnown && st[reg].off >= -StackSize && st[reg].off < 0 {
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
	if code == jmpJA {
		in.Op = opJa
		if t <= pc {
			in.Op = opBack
			in.Size = opJa
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
	op := opJeq64K + 2*jmpCodeIdx[code]
	if r.op&7 == clsJMP32 {
		op += opJeq32K - opJeq64K
		in.Imm = uint64(uint32(r.imm))
	} else {
		in.Imm = uint64(int64(r.imm))
	}
	if x {
		op++
	}
	in.Op = op
	if t <= pc {
		in.Op = opBack
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
func (c *checker) fuse(out []insn) {
	targets := make([]bool, len(out)+1)
	for pc := range out {
		switch o := out[pc].Op; {
		case o >= opJa && o <= opBack, o == opCallLocal:
			if int(out[pc].Jt) < len(targets) {
				targets[out[pc].Jt] = true
			}
		}
	}
	// ldx rD, ctx[k]; mov rT, K; j<cc> rT, rD (or rD, rT) -> opF3.
	for pc := 0; pc+2 < len(out); pc++ {
		a, b, j := &out[pc], &out[pc+1], &out[pc+2]
		if a.Op != opLdxCtxDW || b.Op != opMov64K || targets[pc+1] || targets[pc+2] || b.Dst == a.Dst {
			continue
		}
		if j.Op < opJeq64K || j.Op > opJsle64X || (j.Op-opJeq64K)%2 != 1 {
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
		a.Op = opF3
		a.Src = b.Dst
		a.Imm = b.Imm
		a.Size = k
		a.Jt = j.Jt
	}
	for pc := 0; pc+1 < len(out); pc++ {
		a, b := &out[pc], &out[pc+1]
		if a.Op != opLdxCtxDW || targets[pc+1] {
			continue
		}
		if b.Op < opJeq64K || b.Op > opJsle64X || (b.Op-opJeq64K)%2 != 0 || b.Dst != a.Dst {
			continue
		}
		// a keeps dst and the ctx offset; the jump's target and immediate
		// move in. The next slot is skipped at run time.
		a.Op = opFJeq + (b.Op-opJeq64K)/2
		a.Jt = b.Jt
		a.Imm = b.Imm
	}
}

// swapCond maps the K condition of "K <cc> x" to that of "x <cc'> K".
var swapCond = map[uint8]uint8{
	opJeq64K: opJeq64K, opJne64K: opJne64K, opJset64K: opJset64K,
	opJgt64K: opJlt64K, opJlt64K: opJgt64K, opJge64K: opJle64K, opJle64K: opJge64K,
	opJsgt64K: opJslt64K, opJslt64K: opJsgt64K, opJsge64K: opJsle64K, opJsle64K: opJsge64K,
}
