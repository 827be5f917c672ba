package bpfrt

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/userside/bpfrt/internal/engine/amd64"
	"github.com/kushm/kushm/userside/bpfrt/internal/engine/interp"
	"github.com/kushm/kushm/userside/bpfrt/internal/isa"
)

// insn is one pre-decoded instruction (internal/isa, shared by the
// checker and both engines).
type insn = isa.Insn

// region is memory a program may access through a pointer (the
// interpreter's table, which the JIT's bounds checks read too).
type region = interp.Region

// VM runs one Program. A VM is not safe for concurrent use: give each
// goroutine its own (Program.NewVM) or use Program.Run, which pools them.
// A VM holds the stack and call frames, reused from run to run, for both
// engines: the interpreter's Machine and the JIT's Context.
type VM struct {
	// Run's fast path reads only these first two fields: at small
	// offsets its first load doubles as the nil check (past 4 KiB Go
	// adds an explicit one, a load of its own); r10 is jc.Top, which the
	// code reads itself when it uses r10.
	//
	// fastMin: the shortest context the fast path runs (the code's
	// MaxCtx) when the code needs nothing but its arguments (no region
	// entry, budget, context base or frame to zero); math.MaxUint64
	// (no slice is that long) otherwise, the interpreter included.
	fastMin uint64
	entry   uintptr // the code's entry (amd64.Call)
	p       *Program
	m       interp.Machine
	call    Call
	jc      amd64.Context // the JIT's registers, frames and exits
	code    *amd64.Code   // p.code
	depth0  int           // stack bytes of the main function zeroed at entry
}

// vmHost runs helpers for the interpreter.
type vmHost struct{ vm *VM }

func (h vmHost) CallHelper(idx int, r *[16]uint64) error { return h.vm.callHelper(idx, r) }

// NewVM returns a VM for p.
func (p *Program) NewVM() *VM {
	vm := &VM{p: p, code: p.code}
	vm.m.Insns, vm.m.Funcs, vm.m.MaxBack, vm.m.Host = p.insns, p.ifuncs, p.maxBack, vmHost{vm}
	vm.call.vm = vm
	regions := []region{{Writable: true}}
	stk := unsafe.Pointer(&vm.m.Stack[0])
	regions = append(regions, region{Start: uint64(uintptr(stk)), Size: uint64(len(vm.m.Stack)), Base: stk, Writable: true})
	for _, m := range p.maps {
		if b := m.memory(); len(b) > 0 {
			regions = append(regions, regionOf(b, true))
		}
	}
	for _, m := range p.memory {
		if len(m.Data) > 0 {
			regions = append(regions, regionOf(m.Data, m.Writable))
		}
	}
	vm.m.Regions = regions
	if len(regions) != p.nRegion {
		// the JIT's checks walk nRegion entries: a map whose memory
		// changed size since the load runs on the interpreter
		vm.code = nil
	}
	for i := range regions {
		regions[i].Volatile = i < len(p.volatile) && p.volatile[i]
	}
	vm.jc.Top = uint64(uintptr(unsafe.Pointer(&vm.m.Stack[StackSize]))) // r10
	vm.depth0 = p.ifuncs[0].Depth
	vm.fastMin = math.MaxUint64
	if vm.code != nil && !vm.code.NeedsSetup && vm.depth0 == 0 {
		vm.fastMin, vm.entry = vm.code.MaxCtx, vm.code.Entry()
	}
	vm.jc.Regions = uintptr(unsafe.Pointer(&regions[0]))
	return vm
}

func regionOf(b []byte, w bool) region {
	ptr := unsafe.Pointer(unsafe.SliceData(b))
	return region{Start: uint64(uintptr(ptr)), Size: uint64(len(b)), Base: ptr, Writable: w}
}

func addrOf(b []byte) uint64 { return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

// bytes is [a, a+size) as a slice when it lies inside one region the
// program may access (writable for write), else nil.
func (vm *VM) bytes(a, size uint64, write bool) []byte { return vm.m.Bytes(a, size, write) }

func (vm *VM) fault(pc int, err error, format string, args ...any) error {
	return &RuntimeError{PC: pc, Err: err, Detail: fmt.Sprintf(format, args...)}
}

// Run runs the program with ctx as its context: r1 points to ctx, r2 holds
// its length. It returns r0 at exit, or a *RuntimeError when the program
// made a bad memory access, ran out of budget or a helper failed; a
// program never crashes or corrupts the process.
func (vm *VM) Run(ctx []byte) (ret uint64, err error) {
	n := uint64(len(ctx))
	// One compare covers "the fast path applies" and the context length.
	// shm.AnyVolatile, not shm.Volatile: a flag load whose "nothing
	// mapped" answer falls through (run does the full test). Nested, not
	// joined by &&, so that both tests fall through into the call
	// (objdump; && made the compiler materialise the condition).
	if n >= vm.fastMin {
		if !shm.AnyVolatile() {
			// The filter's path: the same entry as run's, without its
			// setup.
			r0, exit := amd64.Call(&vm.entry, &vm.jc, uint64(uintptr(unsafe.Pointer(unsafe.SliceData(ctx)))), n)
			if exit == amd64.ExitReturn {
				return r0, nil
			}
			return vm.jitExits(exit)
		}
		return vm.run(ctx)
	}
	// The interpreter: its fastMin fails the first test. Go lays this
	// test out with run's call as the fall-through whichever way it is
	// written, so on amd64 an interpreted run takes two branches here
	// (the JIT's fast path none); elsewhere the constant folds it away.
	if !amd64.Supported || vm.code == nil {
		return vm.runInterp(ctx)
	}
	return vm.run(ctx)
}

// run is Run for everything but the fast path.
func (vm *VM) run(ctx []byte) (ret uint64, err error) {
	code := vm.code
	if code == nil || shm.Volatile(ctx) {
		// A context in a region file's mapping runs on the interpreter:
		// the code reads the context unchecked, and a load from a page
		// the file no longer covers must fault at a Go PC (shm.Guard).
		return vm.runInterp(ctx)
	}
	// The JIT's entry: Go calls the code straight from here (or from
	// Run's fast path).
	n := uint64(len(ctx))
	if n < code.MaxCtx {
		// The compiled code checks its constant-offset context accesses
		// once, here: a shorter context runs on the interpreter, which
		// stops at the first access past the end, at its instruction.
		return vm.runInterp(ctx)
	}
	c := &vm.jc
	ptr := unsafe.Pointer(unsafe.SliceData(ctx))
	if code.NeedsSetup {
		vm.jitSetup(ptr, n)
	}
	if vm.depth0 > 0 {
		clear(vm.m.Stack[StackSize-vm.depth0 : StackSize])
	}
	r0, exit := code.Enter(c, uint64(uintptr(ptr)), n)
	if exit == amd64.ExitReturn {
		return r0, nil
	}
	return vm.jitExits(exit)
}

// jitSetup prepares what the program's code reads besides its arguments:
// the context's region entry, the context base, the budget.
func (vm *VM) jitSetup(ptr unsafe.Pointer, n uint64) {
	code, c := vm.code, &vm.jc
	if code.NeedsRegions {
		r := &vm.m.Regions[0]
		r.Start, r.Size, r.Base = uint64(uintptr(ptr)), n, ptr
	}
	if code.NeedsCtxBase {
		c.CtxBase = uint64(uintptr(ptr))
	}
	if code.NeedsBudget {
		c.Budget = vm.p.maxBack
	}
}

// runInterp runs the interpreter; a panic (a helper's, or an interpreter
// bug) becomes an ErrInternal run error.
func (vm *VM) runInterp(ctx []byte) (ret uint64, err error) {
	defer func() {
		if x := recover(); x != nil {
			ret, err = 0, panicError(x)
		}
	}()
	return vm.m.Run(ctx)
}

// panicError is the run error for a panic recovered in a run: a fault in
// a mapped region file (it shrank; the caller runs under shm.Guard) is
// the error Guard gives, wrapping shm.ErrChanged, the same on both
// engines; any other panic is ErrInternal.
func panicError(x any) error {
	if ferr, ok := shm.FaultError(x); ok {
		return &RuntimeError{PC: -1, Err: ferr}
	}
	return &RuntimeError{PC: -1, Err: ErrInternal, Detail: fmt.Sprint(x)}
}
