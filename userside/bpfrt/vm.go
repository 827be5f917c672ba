package bpfrt

import (
	"fmt"
	"math/bits"
	"sync/atomic"
	"unsafe"

	"github.com/kushm/kushm/userside/bpfrt/internal/engine/amd64"
)

// insn is one pre-decoded instruction.
type insn struct {
	op   uint8
	dst  uint8
	src  uint8
	size uint8 // atomics: width; opBack and fused ops: the jump op
	off  int32 // memory offset, or constant ctx/stack offset
	jt   int32 // jump target pc, helper index, call target
	imm  uint64
}

// region is memory a program may access through a pointer.
type region struct {
	start    uint64
	size     uint64
	base     unsafe.Pointer
	writable bool
}

type frame struct {
	ret   int
	saved [4]uint64
}

// VM runs one Program. A VM is not safe for concurrent use: give each
// goroutine its own (Program.NewVM) or use Program.Run, which pools them.
// A VM holds the stack and call frames, reused from run to run.
type VM struct {
	p       *Program
	insns   []insn
	regions []region // [0] context, [1] stack, then maps and memory
	maxBack uint64
	call    Call
	frames  [MaxCallDepth]frame
	budget  uint64
	depth   int
	stack   [MaxCallDepth * StackSize]byte
	// pad keeps the top-of-frame pointer of the deepest frame inside the
	// VM object (a pointer one past an object is not allowed).
	pad    [8]byte
	jc     amd64.Context // the JIT's registers, frames and exits
	code   *amd64.Code   // p.code
	top    uint64        // address of the main frame's top (r10)
	depth0 int           // stack bytes of the main function zeroed at entry
}

// NewVM returns a VM for p.
func (p *Program) NewVM() *VM {
	vm := &VM{p: p, insns: p.insns, maxBack: p.maxBack, code: p.code}
	vm.call.vm = vm
	vm.regions = append(vm.regions, region{writable: true})
	stk := unsafe.Pointer(&vm.stack[0])
	vm.regions = append(vm.regions, region{start: uint64(uintptr(stk)), size: uint64(len(vm.stack)), base: stk, writable: true})
	for _, m := range p.maps {
		if b := m.memory(); len(b) > 0 {
			vm.regions = append(vm.regions, regionOf(b, true))
		}
	}
	for _, m := range p.memory {
		if len(m.Data) > 0 {
			vm.regions = append(vm.regions, regionOf(m.Data, m.Writable))
		}
	}
	if len(vm.regions) != p.nRegion {
		panic("bpfrt: region table and program disagree") // the JIT's checks walk nRegion entries
	}
	vm.top = uint64(uintptr(unsafe.Pointer(&vm.stack[StackSize])))
	vm.depth0 = p.funcs[0].depth
	vm.jc.Regions = uintptr(unsafe.Pointer(&vm.regions[0]))
	return vm
}

func regionOf(b []byte, w bool) region {
	ptr := unsafe.Pointer(unsafe.SliceData(b))
	return region{start: uint64(uintptr(ptr)), size: uint64(len(b)), base: ptr, writable: w}
}

func addrOf(b []byte) uint64 { return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

// addr translates a program address into a Go pointer, or nil when
// [a, a+size) is not inside one region the program may access.
func (vm *VM) addr(a, size uint64, write bool) unsafe.Pointer {
	for i := range vm.regions {
		r := &vm.regions[i]
		rel := a - r.start
		if rel < r.size && size <= r.size-rel {
			if write && !r.writable {
				return nil
			}
			return unsafe.Add(r.base, rel)
		}
	}
	return nil
}

func (vm *VM) bytes(a, size uint64, write bool) []byte {
	if size == 0 {
		return nil
	}
	p := vm.addr(a, size, write)
	if p == nil {
		return nil
	}
	return unsafe.Slice((*byte)(p), size)
}

func (vm *VM) ctxFault(pc int, off int32, n uint64) error {
	return vm.fault(pc, ErrOutOfBounds, "context access at offset %d, context is %d bytes", off, n)
}

func (vm *VM) fault(pc int, err error, format string, args ...any) error {
	return &RuntimeError{PC: pc, Err: err, Detail: fmt.Sprintf(format, args...)}
}

// Run runs the program with ctx as its context: r1 points to ctx, r2 holds
// its length. It returns r0 at exit, or a *RuntimeError when the program
// made a bad memory access, ran out of budget or a helper failed; a
// program never crashes or corrupts the process.
func (vm *VM) Run(ctx []byte) (ret uint64, err error) {
	code := vm.code
	if code == nil {
		return vm.runInterp(ctx)
	}
	// The JIT's entry, kept in this one function: Go calls the code
	// straight from here.
	n := uint64(len(ctx))
	if n < code.MaxCtx {
		// The compiled code checks its constant-offset context accesses
		// once, here: a shorter context runs on the interpreter, which
		// stops at the first access past the end, at its instruction.
		return vm.runInterp(ctx)
	}
	c := &vm.jc
	ptr := unsafe.Pointer(unsafe.SliceData(ctx))
	if code.NeedsRegions {
		r := &vm.regions[0]
		r.start, r.size, r.base = uint64(uintptr(ptr)), n, ptr
	}
	if vm.depth0 > 0 {
		clear(vm.stack[StackSize-vm.depth0 : StackSize])
	}
	if code.NeedsCtxBase {
		c.CtxBase = uint64(uintptr(ptr))
	}
	if code.NeedsBudget {
		c.Budget = vm.maxBack
	}
	r0, exit := code.Enter(c, uint64(uintptr(ptr)), n, vm.top)
	if exit == amd64.ExitReturn {
		return r0, nil
	}
	return vm.jitExits(exit)
}

// runInterp runs the interpreter; a panic (a helper's, or an interpreter
// bug) becomes an ErrInternal run error.
func (vm *VM) runInterp(ctx []byte) (ret uint64, err error) {
	defer func() {
		if x := recover(); x != nil {
			ret, err = 0, &RuntimeError{PC: -1, Err: ErrInternal, Detail: fmt.Sprint(x)}
		}
	}()
	return vm.run(ctx)
}

func (vm *VM) run(ctx []byte) (uint64, error) {
	var r [16]uint64
	insns := vm.insns
	ctxPtr := unsafe.Pointer(unsafe.SliceData(ctx))
	ctxLen := uint64(len(ctx))
	vm.regions[0] = region{start: uint64(uintptr(ctxPtr)), size: ctxLen, base: ctxPtr, writable: true}
	// fpp points to the top of the current frame (r10).
	fpp := unsafe.Pointer(&vm.stack[StackSize])
	if d := vm.p.funcs[0].depth; d > 0 {
		clear(vm.stack[StackSize-d : StackSize])
	}
	r[1] = uint64(uintptr(ctxPtr))
	r[2] = ctxLen
	r[10] = uint64(uintptr(fpp))
	vm.budget = vm.maxBack
	vm.depth = 0
	pc := 0
	for {
		in := &insns[pc]
		pc++
		switch in.op {
		case opAdd64K:
			r[in.dst&15] += in.imm
		case opAdd64X:
			r[in.dst&15] += r[in.src&15]
		case opSub64K:
			r[in.dst&15] -= in.imm
		case opSub64X:
			r[in.dst&15] -= r[in.src&15]
		case opMul64K:
			r[in.dst&15] *= in.imm
		case opMul64X:
			r[in.dst&15] *= r[in.src&15]
		case opDiv64K:
			r[in.dst&15] = udiv64(r[in.dst&15], in.imm)
		case opDiv64X:
			r[in.dst&15] = udiv64(r[in.dst&15], r[in.src&15])
		case opSDiv64K:
			r[in.dst&15] = sdiv64(r[in.dst&15], in.imm)
		case opSDiv64X:
			r[in.dst&15] = sdiv64(r[in.dst&15], r[in.src&15])
		case opOr64K:
			r[in.dst&15] |= in.imm
		case opOr64X:
			r[in.dst&15] |= r[in.src&15]
		case opAnd64K:
			r[in.dst&15] &= in.imm
		case opAnd64X:
			r[in.dst&15] &= r[in.src&15]
		case opLsh64K:
			r[in.dst&15] <<= in.imm & 63
		case opLsh64X:
			r[in.dst&15] <<= r[in.src&15] & 63
		case opRsh64K:
			r[in.dst&15] >>= in.imm & 63
		case opRsh64X:
			r[in.dst&15] >>= r[in.src&15] & 63
		case opNeg64:
			r[in.dst&15] = -r[in.dst&15]
		case opMod64K:
			r[in.dst&15] = umod64(r[in.dst&15], in.imm)
		case opMod64X:
			r[in.dst&15] = umod64(r[in.dst&15], r[in.src&15])
		case opSMod64K:
			r[in.dst&15] = smod64(r[in.dst&15], in.imm)
		case opSMod64X:
			r[in.dst&15] = smod64(r[in.dst&15], r[in.src&15])
		case opXor64K:
			r[in.dst&15] ^= in.imm
		case opXor64X:
			r[in.dst&15] ^= r[in.src&15]
		case opMov64K:
			r[in.dst&15] = in.imm
		case opLddw:
			r[in.dst&15] = in.imm
			pc++
		case opMov64X:
			r[in.dst&15] = r[in.src&15]
		case opMovSX8_64:
			r[in.dst&15] = uint64(int64(int8(r[in.src&15])))
		case opMovSX16_64:
			r[in.dst&15] = uint64(int64(int16(r[in.src&15])))
		case opMovSX32_64:
			r[in.dst&15] = uint64(int64(int32(r[in.src&15])))
		case opArsh64K:
			r[in.dst&15] = uint64(int64(r[in.dst&15]) >> (in.imm & 63))
		case opArsh64X:
			r[in.dst&15] = uint64(int64(r[in.dst&15]) >> (r[in.src&15] & 63))

		case opAdd32K:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) + uint32(in.imm))
		case opAdd32X:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) + uint32(r[in.src&15]))
		case opSub32K:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) - uint32(in.imm))
		case opSub32X:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) - uint32(r[in.src&15]))
		case opMul32K:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) * uint32(in.imm))
		case opMul32X:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) * uint32(r[in.src&15]))
		case opDiv32K:
			r[in.dst&15] = uint64(udiv32(uint32(r[in.dst&15]), uint32(in.imm)))
		case opDiv32X:
			r[in.dst&15] = uint64(udiv32(uint32(r[in.dst&15]), uint32(r[in.src&15])))
		case opSDiv32K:
			r[in.dst&15] = uint64(sdiv32(uint32(r[in.dst&15]), uint32(in.imm)))
		case opSDiv32X:
			r[in.dst&15] = uint64(sdiv32(uint32(r[in.dst&15]), uint32(r[in.src&15])))
		case opOr32K:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) | uint32(in.imm))
		case opOr32X:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) | uint32(r[in.src&15]))
		case opAnd32K:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) & uint32(in.imm))
		case opAnd32X:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) & uint32(r[in.src&15]))
		case opLsh32K:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) << (in.imm & 31))
		case opLsh32X:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) << (r[in.src&15] & 31))
		case opRsh32K:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) >> (in.imm & 31))
		case opRsh32X:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) >> (r[in.src&15] & 31))
		case opNeg32:
			r[in.dst&15] = uint64(-uint32(r[in.dst&15]))
		case opMod32K:
			r[in.dst&15] = uint64(umod32(uint32(r[in.dst&15]), uint32(in.imm)))
		case opMod32X:
			r[in.dst&15] = uint64(umod32(uint32(r[in.dst&15]), uint32(r[in.src&15])))
		case opSMod32K:
			r[in.dst&15] = uint64(smod32(uint32(r[in.dst&15]), uint32(in.imm)))
		case opSMod32X:
			r[in.dst&15] = uint64(smod32(uint32(r[in.dst&15]), uint32(r[in.src&15])))
		case opXor32K:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) ^ uint32(in.imm))
		case opXor32X:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) ^ uint32(r[in.src&15]))
		case opMov32K:
			r[in.dst&15] = uint64(uint32(in.imm))
		case opMov32X:
			r[in.dst&15] = uint64(uint32(r[in.src&15]))
		case opMovSX8_32:
			r[in.dst&15] = uint64(uint32(int32(int8(r[in.src&15]))))
		case opMovSX16_32:
			r[in.dst&15] = uint64(uint32(int32(int16(r[in.src&15]))))
		case opArsh32K:
			r[in.dst&15] = uint64(uint32(int32(uint32(r[in.dst&15])) >> (in.imm & 31)))
		case opArsh32X:
			r[in.dst&15] = uint64(uint32(int32(uint32(r[in.dst&15])) >> (r[in.src&15] & 31)))

		case opTrunc16:
			r[in.dst&15] &= 0xffff
		case opTrunc32:
			r[in.dst&15] &= 0xffffffff
		case opNop:
		case opBswap16:
			r[in.dst&15] = uint64(bits.ReverseBytes16(uint16(r[in.dst&15])))
		case opBswap32:
			r[in.dst&15] = uint64(bits.ReverseBytes32(uint32(r[in.dst&15])))
		case opBswap64:
			r[in.dst&15] = bits.ReverseBytes64(r[in.dst&15])

		case opJa:
			pc = int(in.jt)
		case opJeq64K:
			if r[in.dst&15] == in.imm {
				pc = int(in.jt)
			}
		case opJeq64X:
			if r[in.dst&15] == r[in.src&15] {
				pc = int(in.jt)
			}
		case opJgt64K:
			if r[in.dst&15] > in.imm {
				pc = int(in.jt)
			}
		case opJgt64X:
			if r[in.dst&15] > r[in.src&15] {
				pc = int(in.jt)
			}
		case opJge64K:
			if r[in.dst&15] >= in.imm {
				pc = int(in.jt)
			}
		case opJge64X:
			if r[in.dst&15] >= r[in.src&15] {
				pc = int(in.jt)
			}
		case opJset64K:
			if r[in.dst&15]&in.imm != 0 {
				pc = int(in.jt)
			}
		case opJset64X:
			if r[in.dst&15]&r[in.src&15] != 0 {
				pc = int(in.jt)
			}
		case opJne64K:
			if r[in.dst&15] != in.imm {
				pc = int(in.jt)
			}
		case opJne64X:
			if r[in.dst&15] != r[in.src&15] {
				pc = int(in.jt)
			}
		case opJsgt64K:
			if int64(r[in.dst&15]) > int64(in.imm) {
				pc = int(in.jt)
			}
		case opJsgt64X:
			if int64(r[in.dst&15]) > int64(r[in.src&15]) {
				pc = int(in.jt)
			}
		case opJsge64K:
			if int64(r[in.dst&15]) >= int64(in.imm) {
				pc = int(in.jt)
			}
		case opJsge64X:
			if int64(r[in.dst&15]) >= int64(r[in.src&15]) {
				pc = int(in.jt)
			}
		case opJlt64K:
			if r[in.dst&15] < in.imm {
				pc = int(in.jt)
			}
		case opJlt64X:
			if r[in.dst&15] < r[in.src&15] {
				pc = int(in.jt)
			}
		case opJle64K:
			if r[in.dst&15] <= in.imm {
				pc = int(in.jt)
			}
		case opJle64X:
			if r[in.dst&15] <= r[in.src&15] {
				pc = int(in.jt)
			}
		case opJslt64K:
			if int64(r[in.dst&15]) < int64(in.imm) {
				pc = int(in.jt)
			}
		case opJslt64X:
			if int64(r[in.dst&15]) < int64(r[in.src&15]) {
				pc = int(in.jt)
			}
		case opJsle64K:
			if int64(r[in.dst&15]) <= int64(in.imm) {
				pc = int(in.jt)
			}
		case opJsle64X:
			if int64(r[in.dst&15]) <= int64(r[in.src&15]) {
				pc = int(in.jt)
			}
		case opJeq32K, opJeq32X, opJgt32K, opJgt32X, opJge32K, opJge32X, opJset32K, opJset32X,
			opJne32K, opJne32X, opJsgt32K, opJsgt32X, opJsge32K, opJsge32X, opJlt32K, opJlt32X,
			opJle32K, opJle32X, opJslt32K, opJslt32X, opJsle32K, opJsle32X:
			b := in.imm
			if (in.op-opJeq64K)&1 == 1 {
				b = r[in.src&15]
			}
			if cond(in.op, r[in.dst&15], b) {
				pc = int(in.jt)
			}
		case opBack:
			if vm.budget < uint64(in.off) {
				return 0, vm.fault(pc-1, ErrBudget, "more than %d instructions", vm.maxBack)
			}
			vm.budget -= uint64(in.off)
			if in.size == opJa {
				pc = int(in.jt)
				break
			}
			b := in.imm
			if (in.size-opJeq64K)&1 == 1 {
				b = r[in.src&15]
			}
			if cond(in.size, r[in.dst&15], b) {
				pc = int(in.jt)
			}

		case opFJeq:
			if uint64(in.off)+8 > ctxLen {
				return 0, vm.ctxFault(pc-1, in.off, ctxLen)
			}
			v := *(*uint64)(unsafe.Add(ctxPtr, in.off))
			r[in.dst&15] = v
			if v == in.imm {
				pc = int(in.jt)
			} else {
				pc++
			}
		case opFJgt:
			if uint64(in.off)+8 > ctxLen {
				return 0, vm.ctxFault(pc-1, in.off, ctxLen)
			}
			v := *(*uint64)(unsafe.Add(ctxPtr, in.off))
			r[in.dst&15] = v
			if v > in.imm {
				pc = int(in.jt)
			} else {
				pc++
			}
		case opFJge:
			if uint64(in.off)+8 > ctxLen {
				return 0, vm.ctxFault(pc-1, in.off, ctxLen)
			}
			v := *(*uint64)(unsafe.Add(ctxPtr, in.off))
			r[in.dst&15] = v
			if v >= in.imm {
				pc = int(in.jt)
			} else {
				pc++
			}
		case opFJset:
			if uint64(in.off)+8 > ctxLen {
				return 0, vm.ctxFault(pc-1, in.off, ctxLen)
			}
			v := *(*uint64)(unsafe.Add(ctxPtr, in.off))
			r[in.dst&15] = v
			if v&in.imm != 0 {
				pc = int(in.jt)
			} else {
				pc++
			}
		case opFJne:
			if uint64(in.off)+8 > ctxLen {
				return 0, vm.ctxFault(pc-1, in.off, ctxLen)
			}
			v := *(*uint64)(unsafe.Add(ctxPtr, in.off))
			r[in.dst&15] = v
			if v != in.imm {
				pc = int(in.jt)
			} else {
				pc++
			}
		case opFJsgt:
			if uint64(in.off)+8 > ctxLen {
				return 0, vm.ctxFault(pc-1, in.off, ctxLen)
			}
			v := *(*uint64)(unsafe.Add(ctxPtr, in.off))
			r[in.dst&15] = v
			if int64(v) > int64(in.imm) {
				pc = int(in.jt)
			} else {
				pc++
			}
		case opFJsge:
			if uint64(in.off)+8 > ctxLen {
				return 0, vm.ctxFault(pc-1, in.off, ctxLen)
			}
			v := *(*uint64)(unsafe.Add(ctxPtr, in.off))
			r[in.dst&15] = v
			if int64(v) >= int64(in.imm) {
				pc = int(in.jt)
			} else {
				pc++
			}
		case opFJlt:
			if uint64(in.off)+8 > ctxLen {
				return 0, vm.ctxFault(pc-1, in.off, ctxLen)
			}
			v := *(*uint64)(unsafe.Add(ctxPtr, in.off))
			r[in.dst&15] = v
			if v < in.imm {
				pc = int(in.jt)
			} else {
				pc++
			}
		case opFJle:
			if uint64(in.off)+8 > ctxLen {
				return 0, vm.ctxFault(pc-1, in.off, ctxLen)
			}
			v := *(*uint64)(unsafe.Add(ctxPtr, in.off))
			r[in.dst&15] = v
			if v <= in.imm {
				pc = int(in.jt)
			} else {
				pc++
			}
		case opFJslt:
			if uint64(in.off)+8 > ctxLen {
				return 0, vm.ctxFault(pc-1, in.off, ctxLen)
			}
			v := *(*uint64)(unsafe.Add(ctxPtr, in.off))
			r[in.dst&15] = v
			if int64(v) < int64(in.imm) {
				pc = int(in.jt)
			} else {
				pc++
			}
		case opFJsle:
			if uint64(in.off)+8 > ctxLen {
				return 0, vm.ctxFault(pc-1, in.off, ctxLen)
			}
			v := *(*uint64)(unsafe.Add(ctxPtr, in.off))
			r[in.dst&15] = v
			if int64(v) <= int64(in.imm) {
				pc = int(in.jt)
			} else {
				pc++
			}
		case opF3:
			if uint64(in.off)+8 > ctxLen {
				return 0, vm.ctxFault(pc-1, in.off, ctxLen)
			}
			v := *(*uint64)(unsafe.Add(ctxPtr, in.off))
			r[in.dst&15] = v
			r[in.src&15] = in.imm
			if cond(in.size, v, in.imm) {
				pc = int(in.jt)
			} else {
				pc += 2
			}
		case opCall:
			if err := vm.callHelper(int(in.jt), &r); err != nil {
				return 0, &RuntimeError{PC: pc - 1, Err: fmt.Errorf("%w: %w", ErrHelper, err)}
			}
		case opCallLocal:
			if vm.depth+1 >= MaxCallDepth {
				return 0, vm.fault(pc-1, ErrCallDepth, "more than %d frames", MaxCallDepth)
			}
			n := vm.p.funcs[in.off].length()
			if vm.budget < n {
				return 0, vm.fault(pc-1, ErrBudget, "more than %d instructions", vm.maxBack)
			}
			vm.budget -= n
			f := &vm.frames[vm.depth]
			f.ret = pc
			f.saved = [4]uint64{r[6], r[7], r[8], r[9]}
			vm.depth++
			fp := (vm.depth + 1) * StackSize
			fpp = unsafe.Pointer(&vm.stack[0:len(vm.stack):len(vm.stack)][fp-1])
			fpp = unsafe.Add(fpp, 1) //kushm:offsets-ok the interpreter's stack, not region bytes
			r[10] = uint64(uintptr(fpp))
			if d := vm.p.funcs[in.off].depth; d > 0 {
				clear(vm.stack[fp-d : fp])
			}
			pc = int(in.jt)
		case opExit:
			if vm.depth == 0 {
				return r[0], nil
			}
			vm.depth--
			f := &vm.frames[vm.depth]
			pc = f.ret
			r[6], r[7], r[8], r[9] = f.saved[0], f.saved[1], f.saved[2], f.saved[3]
			fpp = unsafe.Pointer(&vm.stack[(vm.depth+1)*StackSize])
			r[10] = uint64(uintptr(fpp))

		// Context at a constant offset.
		case opLdxCtxB, opLdxCtxH, opLdxCtxW, opLdxCtxDW, opLdxCtxSB, opLdxCtxSH, opLdxCtxSW:
			if in.imm > ctxLen {
				return 0, vm.fault(pc-1, ErrOutOfBounds, "context access at offset %d, context is %d bytes", in.off, ctxLen)
			}
			r[in.dst&15] = loadMem(in.op-opLdxCtxB, unsafe.Add(ctxPtr, in.off))
		case opStCtxB, opStCtxH, opStCtxW, opStCtxDW:
			if in.imm > ctxLen {
				return 0, vm.fault(pc-1, ErrOutOfBounds, "context access at offset %d, context is %d bytes", in.off, ctxLen)
			}
			store(in.op-opStCtxB, unsafe.Add(ctxPtr, in.off), uint64(int64(in.jt)))
		case opStxCtxB, opStxCtxH, opStxCtxW, opStxCtxDW:
			if in.imm > ctxLen {
				return 0, vm.fault(pc-1, ErrOutOfBounds, "context access at offset %d, context is %d bytes", in.off, ctxLen)
			}
			store(in.op-opStxCtxB, unsafe.Add(ctxPtr, in.off), r[in.src&15])

		// Stack at a constant offset: proven in bounds.
		case opLdxStkDW:
			r[in.dst&15] = *(*uint64)(unsafe.Add(fpp, in.off))
		case opStxStkDW:
			*(*uint64)(unsafe.Add(fpp, in.off)) = r[in.src&15]
		case opLdxStkB, opLdxStkH, opLdxStkW, opLdxStkSB, opLdxStkSH, opLdxStkSW:
			r[in.dst&15] = loadMem(in.op-opLdxStkB, unsafe.Add(fpp, in.off))
		case opStStkB, opStStkH, opStStkW, opStStkDW:
			store(in.op-opStStkB, unsafe.Add(fpp, in.off), uint64(int64(in.jt)))
		case opStxStkB, opStxStkH, opStxStkW:
			store(in.op-opStxStkB, unsafe.Add(fpp, in.off), r[in.src&15])

		// Anything else: checked against the region table.
		case opLdxB, opLdxH, opLdxW, opLdxDW, opLdxSB, opLdxSH, opLdxSW:
			k := in.op - opLdxB
			a := r[in.src&15] + uint64(int64(in.off))
			p := vm.addr(a, loadSize[k], false)
			if p == nil {
				return 0, vm.fault(pc-1, ErrOutOfBounds, "load of %d bytes at %#x", loadSize[k], a)
			}
			r[in.dst&15] = loadMem(k, p)
		case opStB, opStH, opStW, opStDW, opStxB, opStxH, opStxW, opStxDW:
			k := (in.op - opStB) & 3
			v := uint64(int64(in.jt))
			if in.op >= opStxB {
				v = r[in.src&15]
			}
			a := r[in.dst&15] + uint64(int64(in.off))
			p := vm.addr(a, loadSize[k], true)
			if p == nil {
				return 0, vm.fault(pc-1, ErrOutOfBounds, "store of %d bytes at %#x", loadSize[k], a)
			}
			store(k, p, v)
		case opAtomic:
			if err := vm.atomic(in, &r); err != nil {
				return 0, &RuntimeError{PC: pc - 1, Err: err}
			}
		default:
			return 0, vm.fault(pc-1, ErrInternal, "invalid operation %d", in.op)
		}
	}
}

var loadSize = [7]uint64{1, 2, 4, 8, 1, 2, 4}

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
	case opJeq64K, opJeq64X:
		return a == b
	case opJgt64K, opJgt64X:
		return a > b
	case opJge64K, opJge64X:
		return a >= b
	case opJset64K, opJset64X:
		return a&b != 0
	case opJne64K, opJne64X:
		return a != b
	case opJsgt64K, opJsgt64X:
		return int64(a) > int64(b)
	case opJsge64K, opJsge64X:
		return int64(a) >= int64(b)
	case opJlt64K, opJlt64X:
		return a < b
	case opJle64K, opJle64X:
		return a <= b
	case opJslt64K, opJslt64X:
		return int64(a) < int64(b)
	case opJsle64K, opJsle64X:
		return int64(a) <= int64(b)
	case opJeq32K, opJeq32X:
		return uint32(a) == uint32(b)
	case opJgt32K, opJgt32X:
		return uint32(a) > uint32(b)
	case opJge32K, opJge32X:
		return uint32(a) >= uint32(b)
	case opJset32K, opJset32X:
		return uint32(a)&uint32(b) != 0
	case opJne32K, opJne32X:
		return uint32(a) != uint32(b)
	case opJsgt32K, opJsgt32X:
		return int32(a) > int32(b)
	case opJsge32K, opJsge32X:
		return int32(a) >= int32(b)
	case opJlt32K, opJlt32X:
		return uint32(a) < uint32(b)
	case opJle32K, opJle32X:
		return uint32(a) <= uint32(b)
	case opJslt32K, opJslt32X:
		return int32(a) < int32(b)
	case opJsle32K, opJsle32X:
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

func (vm *VM) atomic(in *insn, r *[16]uint64) error {
	a := r[in.dst&15] + uint64(int64(in.off))
	size := uint64(in.size)
	if a%size != 0 {
		return fmt.Errorf("%w: atomic access of %d bytes at %#x", ErrMisaligned, size, a)
	}
	p := vm.addr(a, size, true)
	if p == nil {
		return fmt.Errorf("%w: atomic access of %d bytes at %#x", ErrOutOfBounds, size, a)
	}
	src := r[in.src&15]
	op := uint32(in.imm)
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
			r[in.src&15] = uint64(old)
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
		r[in.src&15] = old
	}
	return nil
}
