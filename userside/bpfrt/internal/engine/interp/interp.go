package interp

import (
	"fmt"
	"math/bits"
	"sync/atomic"
	"unsafe"

	"github.com/kushm/kushm/userside/bpfrt/internal/isa"
)

// Region is memory a program may access through a pointer: the context,
// the stack, map values, application memory. The JIT's bounds checks read
// the same table (the layout is checked by a test in userside/bpfrt).
type Region struct {
	Start    uint64
	Size     uint64
	Base     unsafe.Pointer
	Writable bool
	// Volatile: memory mapped from a file that can shrink under the
	// mapping (shm.Volatile), where a load may fault. The interpreter
	// ignores it (its accesses are Go code, recoverable under
	// shm.Guard); the JIT's code never accesses it: it steps the
	// instruction here (Step).
	Volatile bool
}

type frame struct {
	ret   int
	saved [4]uint64
}

// Host is what the interpreter asks of its embedder: running a helper.
// CallHelper reads the arguments from r[1..5] and sets r[0].
type Host interface {
	CallHelper(idx int, r *[16]uint64) error
}

// Machine runs one program: its registers live in Run, its stack and
// call frames here, reused from run to run. Not safe for concurrent use.
type Machine struct {
	Insns   []isa.Insn
	Funcs   []isa.Func
	Regions []Region // [0] context, [1] stack, then maps and memory
	MaxBack uint64
	Host    Host
	hregs   [16]uint64 // the registers a helper sees
	frames  [isa.MaxCallDepth]frame
	budget  uint64
	depth   int
	Stack   [isa.MaxCallDepth * isa.StackSize]byte
	// pad keeps the top-of-frame pointer of the deepest frame inside the
	// object (a pointer one past an object is not allowed).
	pad [8]byte
}

// Atomic operations (RFC 9669), as an atomic instruction's immediate.
const (
	atomicFETCH   = 0x01
	atomicADD     = 0x00
	atomicOR      = 0x40
	atomicAND     = 0x50
	atomicXOR     = 0xa0
	atomicXCHG    = 0xe0 | atomicFETCH
	atomicCMPXCHG = 0xf0 | atomicFETCH
)

func (m *Machine) ctxFault(pc int, off int32, n uint64) error {
	return m.fault(pc, ErrOutOfBounds, "context access at offset %d, context is %d bytes", off, n)
}

func (m *Machine) fault(pc int, err error, format string, args ...any) error {
	return &RuntimeError{PC: pc, Err: err, Detail: fmt.Sprintf(format, args...)}
}

// Addr translates a program address into a Go pointer, or nil when
// [a, a+size) is not inside one region the program may access.
func (m *Machine) Addr(a, size uint64, write bool) unsafe.Pointer {
	for i := range m.Regions {
		r := &m.Regions[i]
		rel := a - r.Start
		if rel < r.Size && size <= r.Size-rel {
			if write && !r.Writable {
				return nil
			}
			return unsafe.Add(r.Base, rel)
		}
	}
	return nil
}

// Bytes is Addr as a slice (nil for size 0 or outside every region).
func (m *Machine) Bytes(a, size uint64, write bool) []byte {
	if size == 0 {
		return nil
	}
	p := m.Addr(a, size, write)
	if p == nil {
		return nil
	}
	return unsafe.Slice((*byte)(p), size)
}

// Run runs the program with ctx as its context: r1 points to ctx, r2 holds
// its length. It returns r0 at exit, or a *RuntimeError when the program
// made a bad memory access, ran out of budget or a helper failed.
func (m *Machine) Run(ctx []byte) (uint64, error) {
	var r [16]uint64
	insns := m.Insns
	ctxPtr := unsafe.Pointer(unsafe.SliceData(ctx))
	ctxLen := uint64(len(ctx))
	m.Regions[0] = Region{Start: uint64(uintptr(ctxPtr)), Size: ctxLen, Base: ctxPtr, Writable: true}
	// fpp points to the top of the current frame (r10).
	fpp := unsafe.Pointer(&m.Stack[isa.StackSize])
	if d := m.Funcs[0].Depth; d > 0 {
		clear(m.Stack[isa.StackSize-d : isa.StackSize])
	}
	r[1] = uint64(uintptr(ctxPtr))
	r[2] = ctxLen
	r[10] = uint64(uintptr(fpp))
	m.budget = m.MaxBack
	m.depth = 0
	pc := 0
	for {
		in := &insns[pc]
		pc++
		switch in.Op {
		case isa.OpAdd64K:
			r[in.Dst&15] += in.Imm
		case isa.OpAdd64X:
			r[in.Dst&15] += r[in.Src&15]
		case isa.OpSub64K:
			r[in.Dst&15] -= in.Imm
		case isa.OpSub64X:
			r[in.Dst&15] -= r[in.Src&15]
		case isa.OpMul64K:
			r[in.Dst&15] *= in.Imm
		case isa.OpMul64X:
			r[in.Dst&15] *= r[in.Src&15]
		case isa.OpDiv64K:
			r[in.Dst&15] = udiv64(r[in.Dst&15], in.Imm)
		case isa.OpDiv64X:
			r[in.Dst&15] = udiv64(r[in.Dst&15], r[in.Src&15])
		case isa.OpSDiv64K:
			r[in.Dst&15] = sdiv64(r[in.Dst&15], in.Imm)
		case isa.OpSDiv64X:
			r[in.Dst&15] = sdiv64(r[in.Dst&15], r[in.Src&15])
		case isa.OpOr64K:
			r[in.Dst&15] |= in.Imm
		case isa.OpOr64X:
			r[in.Dst&15] |= r[in.Src&15]
		case isa.OpAnd64K:
			r[in.Dst&15] &= in.Imm
		case isa.OpAnd64X:
			r[in.Dst&15] &= r[in.Src&15]
		case isa.OpLsh64K:
			r[in.Dst&15] <<= in.Imm & 63
		case isa.OpLsh64X:
			r[in.Dst&15] <<= r[in.Src&15] & 63
		case isa.OpRsh64K:
			r[in.Dst&15] >>= in.Imm & 63
		case isa.OpRsh64X:
			r[in.Dst&15] >>= r[in.Src&15] & 63
		case isa.OpNeg64:
			r[in.Dst&15] = -r[in.Dst&15]
		case isa.OpMod64K:
			r[in.Dst&15] = umod64(r[in.Dst&15], in.Imm)
		case isa.OpMod64X:
			r[in.Dst&15] = umod64(r[in.Dst&15], r[in.Src&15])
		case isa.OpSMod64K:
			r[in.Dst&15] = smod64(r[in.Dst&15], in.Imm)
		case isa.OpSMod64X:
			r[in.Dst&15] = smod64(r[in.Dst&15], r[in.Src&15])
		case isa.OpXor64K:
			r[in.Dst&15] ^= in.Imm
		case isa.OpXor64X:
			r[in.Dst&15] ^= r[in.Src&15]
		case isa.OpMov64K:
			r[in.Dst&15] = in.Imm
		case isa.OpLddw:
			r[in.Dst&15] = in.Imm
			pc++
		case isa.OpMov64X:
			r[in.Dst&15] = r[in.Src&15]
		case isa.OpMovSX8_64:
			r[in.Dst&15] = uint64(int64(int8(r[in.Src&15])))
		case isa.OpMovSX16_64:
			r[in.Dst&15] = uint64(int64(int16(r[in.Src&15])))
		case isa.OpMovSX32_64:
			r[in.Dst&15] = uint64(int64(int32(r[in.Src&15])))
		case isa.OpArsh64K:
			r[in.Dst&15] = uint64(int64(r[in.Dst&15]) >> (in.Imm & 63))
		case isa.OpArsh64X:
			r[in.Dst&15] = uint64(int64(r[in.Dst&15]) >> (r[in.Src&15] & 63))

		case isa.OpAdd32K:
			r[in.Dst&15] = uint64(uint32(r[in.Dst&15]) + uint32(in.Imm))
		case isa.OpAdd32X:
			r[in.Dst&15] = uint64(uint32(r[in.Dst&15]) + uint32(r[in.Src&15]))
		case isa.OpSub32K:
			r[in.Dst&15] = uint64(uint32(r[in.Dst&15]) - uint32(in.Imm))
		case isa.OpSub32X:
			r[in.Dst&15] = uint64(uint32(r[in.Dst&15]) - uint32(r[in.Src&15]))
		case isa.OpMul32K:
			r[in.Dst&15] = uint64(uint32(r[in.Dst&15]) * uint32(in.Imm))
		case isa.OpMul32X:
			r[in.Dst&15] = uint64(uint32(r[in.Dst&15]) * uint32(r[in.Src&15]))
		case isa.OpDiv32K:
			r[in.Dst&15] = uint64(udiv32(uint32(r[in.Dst&15]), uint32(in.Imm)))
		case isa.OpDiv32X:
			r[in.Dst&15] = uint64(udiv32(uint32(r[in.Dst&15]), uint32(r[in.Src&15])))
		case isa.OpSDiv32K:
			r[in.Dst&15] = uint64(sdiv32(uint32(r[in.Dst&15]), uint32(in.Imm)))
		case isa.OpSDiv32X:
			r[in.Dst&15] = uint64(sdiv32(uint32(r[in.Dst&15]), uint32(r[in.Src&15])))
		case isa.OpOr32K:
			r[in.Dst&15] = uint64(uint32(r[in.Dst&15]) | uint32(in.Imm))
		case isa.OpOr32X:
			r[in.Dst&15] = uint64(uint32(r[in.Dst&15]) | uint32(r[in.Src&15]))
		case isa.OpAnd32K:
			r[in.Dst&15] = uint64(uint32(r[in.Dst&15]) & uint32(in.Imm))
		case isa.OpAnd32X:
			r[in.Dst&15] = uint64(uint32(r[in.Dst&15]) & uint32(r[in.Src&15]))
		case isa.OpLsh32K:
			r[in.Dst&15] = uint64(uint32(r[in.Dst&15]) << (in.Imm & 31))
		case isa.OpLsh32X:
			r[in.Dst&15] = uint64(uint32(r[in.Dst&15]) << (r[in.Src&15] & 31))
		case isa.OpRsh32K:
			r[in.Dst&15] = uint64(uint32(r[in.Dst&15]) >> (in.Imm & 31))
		case isa.OpRsh32X:
			r[in.Dst&15] = uint64(uint32(r[in.Dst&15]) >> (r[in.Src&15] & 31))
		case isa.OpNeg32:
			r[in.Dst&15] = uint64(-uint32(r[in.Dst&15]))
		case isa.OpMod32K:
			r[in.Dst&15] = uint64(umod32(uint32(r[in.Dst&15]), uint32(in.Imm)))
		case isa.OpMod32X:
			r[in.Dst&15] = uint64(umod32(uint32(r[in.Dst&15]), uint32(r[in.Src&15])))
		case isa.OpSMod32K:
			r[in.Dst&15] = uint64(smod32(uint32(r[in.Dst&15]), uint32(in.Imm)))
		case isa.OpSMod32X:
			r[in.Dst&15] = uint64(smod32(uint32(r[in.Dst&15]), uint32(r[in.Src&15])))
		case isa.OpXor32K:
			r[in.Dst&15] = uint64(uint32(r[in.Dst&15]) ^ uint32(in.Imm))
		case isa.OpXor32X:
			r[in.Dst&15] = uint64(uint32(r[in.Dst&15]) ^ uint32(r[in.Src&15]))
		case isa.OpMov32K:
			r[in.Dst&15] = uint64(uint32(in.Imm))
		case isa.OpMov32X:
			r[in.Dst&15] = uint64(uint32(r[in.Src&15]))
		case isa.OpMovSX8_32:
			r[in.Dst&15] = uint64(uint32(int32(int8(r[in.Src&15]))))
		case isa.OpMovSX16_32:
			r[in.Dst&15] = uint64(uint32(int32(int16(r[in.Src&15]))))
		case isa.OpArsh32K:
			r[in.Dst&15] = uint64(uint32(int32(uint32(r[in.Dst&15])) >> (in.Imm & 31)))
		case isa.OpArsh32X:
			r[in.Dst&15] = uint64(uint32(int32(uint32(r[in.Dst&15])) >> (r[in.Src&15] & 31)))

		case isa.OpTrunc16:
			r[in.Dst&15] &= 0xffff
		case isa.OpTrunc32:
			r[in.Dst&15] &= 0xffffffff
		case isa.OpNop:
		case isa.OpBswap16:
			r[in.Dst&15] = uint64(bits.ReverseBytes16(uint16(r[in.Dst&15])))
		case isa.OpBswap32:
			r[in.Dst&15] = uint64(bits.ReverseBytes32(uint32(r[in.Dst&15])))
		case isa.OpBswap64:
			r[in.Dst&15] = bits.ReverseBytes64(r[in.Dst&15])

		case isa.OpJa:
			pc = int(in.Jt)
		case isa.OpJeq64K:
			if r[in.Dst&15] == in.Imm {
				pc = int(in.Jt)
			}
		case isa.OpJeq64X:
			if r[in.Dst&15] == r[in.Src&15] {
				pc = int(in.Jt)
			}
		case isa.OpJgt64K:
			if r[in.Dst&15] > in.Imm {
				pc = int(in.Jt)
			}
		case isa.OpJgt64X:
			if r[in.Dst&15] > r[in.Src&15] {
				pc = int(in.Jt)
			}
		case isa.OpJge64K:
			if r[in.Dst&15] >= in.Imm {
				pc = int(in.Jt)
			}
		case isa.OpJge64X:
			if r[in.Dst&15] >= r[in.Src&15] {
				pc = int(in.Jt)
			}
		case isa.OpJset64K:
			if r[in.Dst&15]&in.Imm != 0 {
				pc = int(in.Jt)
			}
		case isa.OpJset64X:
			if r[in.Dst&15]&r[in.Src&15] != 0 {
				pc = int(in.Jt)
			}
		case isa.OpJne64K:
			if r[in.Dst&15] != in.Imm {
				pc = int(in.Jt)
			}
		case isa.OpJne64X:
			if r[in.Dst&15] != r[in.Src&15] {
				pc = int(in.Jt)
			}
		case isa.OpJsgt64K:
			if int64(r[in.Dst&15]) > int64(in.Imm) {
				pc = int(in.Jt)
			}
		case isa.OpJsgt64X:
			if int64(r[in.Dst&15]) > int64(r[in.Src&15]) {
				pc = int(in.Jt)
			}
		case isa.OpJsge64K:
			if int64(r[in.Dst&15]) >= int64(in.Imm) {
				pc = int(in.Jt)
			}
		case isa.OpJsge64X:
			if int64(r[in.Dst&15]) >= int64(r[in.Src&15]) {
				pc = int(in.Jt)
			}
		case isa.OpJlt64K:
			if r[in.Dst&15] < in.Imm {
				pc = int(in.Jt)
			}
		case isa.OpJlt64X:
			if r[in.Dst&15] < r[in.Src&15] {
				pc = int(in.Jt)
			}
		case isa.OpJle64K:
			if r[in.Dst&15] <= in.Imm {
				pc = int(in.Jt)
			}
		case isa.OpJle64X:
			if r[in.Dst&15] <= r[in.Src&15] {
				pc = int(in.Jt)
			}
		case isa.OpJslt64K:
			if int64(r[in.Dst&15]) < int64(in.Imm) {
				pc = int(in.Jt)
			}
		case isa.OpJslt64X:
			if int64(r[in.Dst&15]) < int64(r[in.Src&15]) {
				pc = int(in.Jt)
			}
		case isa.OpJsle64K:
			if int64(r[in.Dst&15]) <= int64(in.Imm) {
				pc = int(in.Jt)
			}
		case isa.OpJsle64X:
			if int64(r[in.Dst&15]) <= int64(r[in.Src&15]) {
				pc = int(in.Jt)
			}
		case isa.OpJeq32K, isa.OpJeq32X, isa.OpJgt32K, isa.OpJgt32X, isa.OpJge32K, isa.OpJge32X, isa.OpJset32K, isa.OpJset32X,
			isa.OpJne32K, isa.OpJne32X, isa.OpJsgt32K, isa.OpJsgt32X, isa.OpJsge32K, isa.OpJsge32X, isa.OpJlt32K, isa.OpJlt32X,
			isa.OpJle32K, isa.OpJle32X, isa.OpJslt32K, isa.OpJslt32X, isa.OpJsle32K, isa.OpJsle32X:
			b := in.Imm
			if (in.Op-isa.OpJeq64K)&1 == 1 {
				b = r[in.Src&15]
			}
			if cond(in.Op, r[in.Dst&15], b) {
				pc = int(in.Jt)
			}
		case isa.OpBack:
			if m.budget < uint64(in.Off) {
				return 0, m.fault(pc-1, ErrBudget, "more than %d instructions", m.MaxBack)
			}
			m.budget -= uint64(in.Off)
			if in.Size == isa.OpJa {
				pc = int(in.Jt)
				break
			}
			b := in.Imm
			if (in.Size-isa.OpJeq64K)&1 == 1 {
				b = r[in.Src&15]
			}
			if cond(in.Size, r[in.Dst&15], b) {
				pc = int(in.Jt)
			}

		case isa.OpFJeq:
			if uint64(in.Off)+8 > ctxLen {
				return 0, m.ctxFault(pc-1, in.Off, ctxLen)
			}
			v := *(*uint64)(unsafe.Add(ctxPtr, in.Off))
			r[in.Dst&15] = v
			if v == in.Imm {
				pc = int(in.Jt)
			} else {
				pc++
			}
		case isa.OpFJgt:
			if uint64(in.Off)+8 > ctxLen {
				return 0, m.ctxFault(pc-1, in.Off, ctxLen)
			}
			v := *(*uint64)(unsafe.Add(ctxPtr, in.Off))
			r[in.Dst&15] = v
			if v > in.Imm {
				pc = int(in.Jt)
			} else {
				pc++
			}
		case isa.OpFJge:
			if uint64(in.Off)+8 > ctxLen {
				return 0, m.ctxFault(pc-1, in.Off, ctxLen)
			}
			v := *(*uint64)(unsafe.Add(ctxPtr, in.Off))
			r[in.Dst&15] = v
			if v >= in.Imm {
				pc = int(in.Jt)
			} else {
				pc++
			}
		case isa.OpFJset:
			if uint64(in.Off)+8 > ctxLen {
				return 0, m.ctxFault(pc-1, in.Off, ctxLen)
			}
			v := *(*uint64)(unsafe.Add(ctxPtr, in.Off))
			r[in.Dst&15] = v
			if v&in.Imm != 0 {
				pc = int(in.Jt)
			} else {
				pc++
			}
		case isa.OpFJne:
			if uint64(in.Off)+8 > ctxLen {
				return 0, m.ctxFault(pc-1, in.Off, ctxLen)
			}
			v := *(*uint64)(unsafe.Add(ctxPtr, in.Off))
			r[in.Dst&15] = v
			if v != in.Imm {
				pc = int(in.Jt)
			} else {
				pc++
			}
		case isa.OpFJsgt:
			if uint64(in.Off)+8 > ctxLen {
				return 0, m.ctxFault(pc-1, in.Off, ctxLen)
			}
			v := *(*uint64)(unsafe.Add(ctxPtr, in.Off))
			r[in.Dst&15] = v
			if int64(v) > int64(in.Imm) {
				pc = int(in.Jt)
			} else {
				pc++
			}
		case isa.OpFJsge:
			if uint64(in.Off)+8 > ctxLen {
				return 0, m.ctxFault(pc-1, in.Off, ctxLen)
			}
			v := *(*uint64)(unsafe.Add(ctxPtr, in.Off))
			r[in.Dst&15] = v
			if int64(v) >= int64(in.Imm) {
				pc = int(in.Jt)
			} else {
				pc++
			}
		case isa.OpFJlt:
			if uint64(in.Off)+8 > ctxLen {
				return 0, m.ctxFault(pc-1, in.Off, ctxLen)
			}
			v := *(*uint64)(unsafe.Add(ctxPtr, in.Off))
			r[in.Dst&15] = v
			if v < in.Imm {
				pc = int(in.Jt)
			} else {
				pc++
			}
		case isa.OpFJle:
			if uint64(in.Off)+8 > ctxLen {
				return 0, m.ctxFault(pc-1, in.Off, ctxLen)
			}
			v := *(*uint64)(unsafe.Add(ctxPtr, in.Off))
			r[in.Dst&15] = v
			if v <= in.Imm {
				pc = int(in.Jt)
			} else {
				pc++
			}
		case isa.OpFJslt:
			if uint64(in.Off)+8 > ctxLen {
				return 0, m.ctxFault(pc-1, in.Off, ctxLen)
			}
			v := *(*uint64)(unsafe.Add(ctxPtr, in.Off))
			r[in.Dst&15] = v
			if int64(v) < int64(in.Imm) {
				pc = int(in.Jt)
			} else {
				pc++
			}
		case isa.OpFJsle:
			if uint64(in.Off)+8 > ctxLen {
				return 0, m.ctxFault(pc-1, in.Off, ctxLen)
			}
			v := *(*uint64)(unsafe.Add(ctxPtr, in.Off))
			r[in.Dst&15] = v
			if int64(v) <= int64(in.Imm) {
				pc = int(in.Jt)
			} else {
				pc++
			}
		case isa.OpF3:
			if uint64(in.Off)+8 > ctxLen {
				return 0, m.ctxFault(pc-1, in.Off, ctxLen)
			}
			v := *(*uint64)(unsafe.Add(ctxPtr, in.Off))
			r[in.Dst&15] = v
			r[in.Src&15] = in.Imm
			if cond(in.Size, v, in.Imm) {
				pc = int(in.Jt)
			} else {
				pc += 2
			}
		case isa.OpCall:
			// the helper sees a copy in the Machine: the registers stay
			// on this frame (an interface call would move them to the heap)
			h := &m.hregs
			*h = r
			if err := m.Host.CallHelper(int(in.Jt), h); err != nil {
				return 0, &RuntimeError{PC: pc - 1, Err: fmt.Errorf("%w: %w", ErrHelper, err)}
			}
			r[0] = h[0]
		case isa.OpCallLocal:
			if m.depth+1 >= isa.MaxCallDepth {
				return 0, m.fault(pc-1, ErrCallDepth, "more than %d frames", isa.MaxCallDepth)
			}
			n := m.Funcs[in.Off].Len()
			if m.budget < n {
				return 0, m.fault(pc-1, ErrBudget, "more than %d instructions", m.MaxBack)
			}
			m.budget -= n
			f := &m.frames[m.depth]
			f.ret = pc
			f.saved = [4]uint64{r[6], r[7], r[8], r[9]}
			m.depth++
			fp := (m.depth + 1) * isa.StackSize
			fpp = unsafe.Pointer(&m.Stack[0:len(m.Stack):len(m.Stack)][fp-1])
			fpp = unsafe.Add(fpp, 1) //kushm:offsets-ok the interpreter's stack, not region bytes
			r[10] = uint64(uintptr(fpp))
			if d := m.Funcs[in.Off].Depth; d > 0 {
				clear(m.Stack[fp-d : fp])
			}
			pc = int(in.Jt)
		case isa.OpExit:
			if m.depth == 0 {
				return r[0], nil
			}
			m.depth--
			f := &m.frames[m.depth]
			pc = f.ret
			r[6], r[7], r[8], r[9] = f.saved[0], f.saved[1], f.saved[2], f.saved[3]
			fpp = unsafe.Pointer(&m.Stack[(m.depth+1)*isa.StackSize])
			r[10] = uint64(uintptr(fpp))

		// Context at a constant offset.
		case isa.OpLdxCtxB, isa.OpLdxCtxH, isa.OpLdxCtxW, isa.OpLdxCtxDW, isa.OpLdxCtxSB, isa.OpLdxCtxSH, isa.OpLdxCtxSW:
			if in.Imm > ctxLen {
				return 0, m.fault(pc-1, ErrOutOfBounds, "context access at offset %d, context is %d bytes", in.Off, ctxLen)
			}
			r[in.Dst&15] = loadMem(in.Op-isa.OpLdxCtxB, unsafe.Add(ctxPtr, in.Off))
		case isa.OpStCtxB, isa.OpStCtxH, isa.OpStCtxW, isa.OpStCtxDW:
			if in.Imm > ctxLen {
				return 0, m.fault(pc-1, ErrOutOfBounds, "context access at offset %d, context is %d bytes", in.Off, ctxLen)
			}
			store(in.Op-isa.OpStCtxB, unsafe.Add(ctxPtr, in.Off), uint64(int64(in.Jt)))
		case isa.OpStxCtxB, isa.OpStxCtxH, isa.OpStxCtxW, isa.OpStxCtxDW:
			if in.Imm > ctxLen {
				return 0, m.fault(pc-1, ErrOutOfBounds, "context access at offset %d, context is %d bytes", in.Off, ctxLen)
			}
			store(in.Op-isa.OpStxCtxB, unsafe.Add(ctxPtr, in.Off), r[in.Src&15])

		// Stack at a constant offset: proven in bounds.
		case isa.OpLdxStkDW:
			r[in.Dst&15] = *(*uint64)(unsafe.Add(fpp, in.Off))
		case isa.OpStxStkDW:
			*(*uint64)(unsafe.Add(fpp, in.Off)) = r[in.Src&15]
		case isa.OpLdxStkB, isa.OpLdxStkH, isa.OpLdxStkW, isa.OpLdxStkSB, isa.OpLdxStkSH, isa.OpLdxStkSW:
			r[in.Dst&15] = loadMem(in.Op-isa.OpLdxStkB, unsafe.Add(fpp, in.Off))
		case isa.OpStStkB, isa.OpStStkH, isa.OpStStkW, isa.OpStStkDW:
			store(in.Op-isa.OpStStkB, unsafe.Add(fpp, in.Off), uint64(int64(in.Jt)))
		case isa.OpStxStkB, isa.OpStxStkH, isa.OpStxStkW:
			store(in.Op-isa.OpStxStkB, unsafe.Add(fpp, in.Off), r[in.Src&15])

		// Anything else: checked against the region table.
		case isa.OpLdxB, isa.OpLdxH, isa.OpLdxW, isa.OpLdxDW, isa.OpLdxSB, isa.OpLdxSH, isa.OpLdxSW:
			k := in.Op - isa.OpLdxB
			a := r[in.Src&15] + uint64(int64(in.Off))
			p := m.Addr(a, loadSize[k], false)
			if p == nil {
				return 0, m.fault(pc-1, ErrOutOfBounds, "load of %d bytes at %#x", loadSize[k], a)
			}
			r[in.Dst&15] = loadMem(k, p)
		case isa.OpStB, isa.OpStH, isa.OpStW, isa.OpStDW, isa.OpStxB, isa.OpStxH, isa.OpStxW, isa.OpStxDW:
			k := (in.Op - isa.OpStB) & 3
			v := uint64(int64(in.Jt))
			if in.Op >= isa.OpStxB {
				v = r[in.Src&15]
			}
			a := r[in.Dst&15] + uint64(int64(in.Off))
			p := m.Addr(a, loadSize[k], true)
			if p == nil {
				return 0, m.fault(pc-1, ErrOutOfBounds, "store of %d bytes at %#x", loadSize[k], a)
			}
			store(k, p, v)
		case isa.OpAtomic:
			if err := m.Atomic(in, &r); err != nil {
				return 0, &RuntimeError{PC: pc - 1, Err: err}
			}
		default:
			return 0, m.fault(pc-1, ErrInternal, "invalid operation %d", in.Op)
		}
	}
}

var loadSize = [7]uint64{1, 2, 4, 8, 1, 2, 4}

// Step performs one memory instruction (a load, a store or an atomic)
// on r with the interpreter's code: the JIT's exit for an access to a
// Volatile region, so that a fault happens at a Go PC. A bad access
// returns an error wrapping ErrOutOfBounds or ErrMisaligned.
func (m *Machine) Step(in *isa.Insn, r *[16]uint64) error {
	switch {
	case in.Op >= isa.OpLdxB && in.Op <= isa.OpLdxSW:
		k := in.Op - isa.OpLdxB
		a := r[in.Src&15] + uint64(int64(in.Off))
		p := m.Addr(a, loadSize[k], false)
		if p == nil {
			return fmt.Errorf("%w: load of %d bytes at %#x", ErrOutOfBounds, loadSize[k], a)
		}
		r[in.Dst&15] = loadMem(k, p)
	case in.Op >= isa.OpStB && in.Op <= isa.OpStxDW:
		k := (in.Op - isa.OpStB) & 3
		v := uint64(int64(in.Jt))
		if in.Op >= isa.OpStxB {
			v = r[in.Src&15]
		}
		a := r[in.Dst&15] + uint64(int64(in.Off))
		p := m.Addr(a, loadSize[k], true)
		if p == nil {
			return fmt.Errorf("%w: store of %d bytes at %#x", ErrOutOfBounds, loadSize[k], a)
		}
		store(k, p, v)
	case in.Op == isa.OpAtomic:
		return m.Atomic(in, r)
	default:
		return fmt.Errorf("%w: step of operation %d", ErrInternal, in.Op)
	}
	return nil
}

// loadMem reads a value of kind k (B, H, W, DW, SB, SH, SW) at p.
func loadMem(k uint8, p unsafe.Pointer) uint64 {
	switch k {
	case 0:
		return uint64(*(*uint8)(p))
	case 1:
		return uint64(*(*uint16)(p))
	case 2:
		return uint64(*(*uint32)(p))
	case 3:
		return *(*uint64)(p)
	case 4:
		return uint64(int64(*(*int8)(p)))
	case 5:
		return uint64(int64(*(*int16)(p)))
	}
	return uint64(int64(*(*int32)(p)))
}

// store writes v of size kind k (B, H, W, DW) at p.
func store(k uint8, p unsafe.Pointer, v uint64) {
	switch k {
	case 0:
		*(*uint8)(p) = uint8(v)
	case 1:
		*(*uint16)(p) = uint16(v)
	case 2:
		*(*uint32)(p) = uint32(v)
	default:
		*(*uint64)(p) = v
	}
}

func cond(op uint8, a, b uint64) bool {
	switch op {
	case isa.OpJeq64K, isa.OpJeq64X:
		return a == b
	case isa.OpJgt64K, isa.OpJgt64X:
		return a > b
	case isa.OpJge64K, isa.OpJge64X:
		return a >= b
	case isa.OpJset64K, isa.OpJset64X:
		return a&b != 0
	case isa.OpJne64K, isa.OpJne64X:
		return a != b
	case isa.OpJsgt64K, isa.OpJsgt64X:
		return int64(a) > int64(b)
	case isa.OpJsge64K, isa.OpJsge64X:
		return int64(a) >= int64(b)
	case isa.OpJlt64K, isa.OpJlt64X:
		return a < b
	case isa.OpJle64K, isa.OpJle64X:
		return a <= b
	case isa.OpJslt64K, isa.OpJslt64X:
		return int64(a) < int64(b)
	case isa.OpJsle64K, isa.OpJsle64X:
		return int64(a) <= int64(b)
	case isa.OpJeq32K, isa.OpJeq32X:
		return uint32(a) == uint32(b)
	case isa.OpJgt32K, isa.OpJgt32X:
		return uint32(a) > uint32(b)
	case isa.OpJge32K, isa.OpJge32X:
		return uint32(a) >= uint32(b)
	case isa.OpJset32K, isa.OpJset32X:
		return uint32(a)&uint32(b) != 0
	case isa.OpJne32K, isa.OpJne32X:
		return uint32(a) != uint32(b)
	case isa.OpJsgt32K, isa.OpJsgt32X:
		return int32(a) > int32(b)
	case isa.OpJsge32K, isa.OpJsge32X:
		return int32(a) >= int32(b)
	case isa.OpJlt32K, isa.OpJlt32X:
		return uint32(a) < uint32(b)
	case isa.OpJle32K, isa.OpJle32X:
		return uint32(a) <= uint32(b)
	case isa.OpJslt32K, isa.OpJslt32X:
		return int32(a) < int32(b)
	case isa.OpJsle32K, isa.OpJsle32X:
		return int32(a) <= int32(b)
	}
	return false
}

func udiv64(a, b uint64) uint64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func umod64(a, b uint64) uint64 {
	if b == 0 {
		return a
	}
	return a % b
}

func sdiv64(a, b uint64) uint64 {
	if b == 0 {
		return 0
	}
	return uint64(int64(a) / int64(b))
}

func smod64(a, b uint64) uint64 {
	if b == 0 {
		return a
	}
	return uint64(int64(a) % int64(b))
}

func udiv32(a, b uint32) uint32 {
	if b == 0 {
		return 0
	}
	return a / b
}

func umod32(a, b uint32) uint32 {
	if b == 0 {
		return a
	}
	return a % b
}

func sdiv32(a, b uint32) uint32 {
	if b == 0 {
		return 0
	}
	return uint32(int32(a) / int32(b))
}

func smod32(a, b uint32) uint32 {
	if b == 0 {
		return a
	}
	return uint32(int32(a) % int32(b))
}

func (m *Machine) Atomic(in *isa.Insn, r *[16]uint64) error {
	a := r[in.Dst&15] + uint64(int64(in.Off))
	size := uint64(in.Size)
	if a%size != 0 {
		return fmt.Errorf("%w: atomic access of %d bytes at %#x", ErrMisaligned, size, a)
	}
	p := m.Addr(a, size, true)
	if p == nil {
		return fmt.Errorf("%w: atomic access of %d bytes at %#x", ErrOutOfBounds, size, a)
	}
	src := r[in.Src&15]
	op := uint32(in.Imm)
	if size == 4 {
		p32 := (*uint32)(p)
		v := uint32(src)
		var old uint32
		switch op &^ atomicFETCH {
		case atomicADD:
			old = atomic.AddUint32(p32, v) - v
		case atomicOR:
			old = atomic.OrUint32(p32, v)
		case atomicAND:
			old = atomic.AndUint32(p32, v)
		case atomicXOR:
			for {
				old = atomic.LoadUint32(p32)
				if atomic.CompareAndSwapUint32(p32, old, old^v) {
					break
				}
			}
		case atomicXCHG &^ atomicFETCH:
			old = atomic.SwapUint32(p32, v)
		case atomicCMPXCHG &^ atomicFETCH:
			exp := uint32(r[0])
			for {
				old = atomic.LoadUint32(p32)
				if old != exp || atomic.CompareAndSwapUint32(p32, old, v) {
					break
				}
			}
			r[0] = uint64(old)
			return nil
		}
		if op&atomicFETCH != 0 {
			r[in.Src&15] = uint64(old)
		}
		return nil
	}
	p64 := (*uint64)(p)
	var old uint64
	switch op &^ atomicFETCH {
	case atomicADD:
		old = atomic.AddUint64(p64, src) - src
	case atomicOR:
		old = atomic.OrUint64(p64, src)
	case atomicAND:
		old = atomic.AndUint64(p64, src)
	case atomicXOR:
		for {
			old = atomic.LoadUint64(p64)
			if atomic.CompareAndSwapUint64(p64, old, old^src) {
				break
			}
		}
	case atomicXCHG &^ atomicFETCH:
		old = atomic.SwapUint64(p64, src)
	case atomicCMPXCHG &^ atomicFETCH:
		exp := r[0]
		for {
			old = atomic.LoadUint64(p64)
			if old != exp || atomic.CompareAndSwapUint64(p64, old, src) {
				break
			}
		}
		r[0] = old
		return nil
	}
	if op&atomicFETCH != 0 {
		r[in.Src&15] = old
	}
	return nil
}
