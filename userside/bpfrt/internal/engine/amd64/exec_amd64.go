//go:build amd64 && linux

package amd64

import (
	"fmt"
	"reflect"
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/kushm/kushm/internal/sys"
)

// Supported reports whether this platform runs compiled programs.
const Supported = true

// Code is a program mapped executable: written while read+write, then
// switched to read+execute (never both writable and executable). Close
// unmaps it; an unreachable Code is unmapped by a cleanup.
type Code struct {
	text   []byte
	entry  uintptr
	resume uintptr
	retPC  map[int]int
	next   map[int]int // ExitStep: return address -> resume offset
	MaxCtx uint64
	// NeedsRegions, NeedsBudget, NeedsCtxBase: see Program; NeedsSetup
	// is their disjunction (one test on the fast path).
	NeedsRegions, NeedsBudget, NeedsCtxBase, NeedsSetup bool
	Groups                                              int // predicate groups (Program.Groups)
	// The entries as Go functions: a func value is a pointer to a word
	// holding the code address, and Go calls it with the ABIInternal
	// convention the prologue expects. No assembly trampoline, no ABI
	// wrapper: one indirect call from Go.
	enter, resumeFn entryFunc
}

// entryFunc is how Go calls the code: the Context and r1, r2 in
// registers (r10 is Context.Top), r0 and the exit code back in registers.
type entryFunc func(c *Context, r1, r2 uint64) (r0, exit uint64)

// funcOf makes a Go func value calling the code at pc.
func funcOf(pc uintptr) entryFunc {
	fv := &struct{ fn uintptr }{pc}
	return *(*entryFunc)(unsafe.Pointer(&fv))
}

// nextHint is where the next code mapping is asked for: from 128 MiB past
// Go's text (rounded down to 64 MiB) on, so calls from Go into the code
// and back are near. On the 2-vCPU EPYC guest measured here, a call into
// code 128 MiB from its caller cost as much as one into Go's own text; a
// call into code 128 TiB away (where mmap puts it without a hint) cost
// 0.8 ns more on a quiet machine (the filter benchmark at N = 1) and 5 to
// 7 ns more under load. A hint the kernel cannot honour costs only that.
var nextHint = func() *atomic.Uint64 {
	var h atomic.Uint64
	text := reflect.ValueOf(funcOf).Pointer()
	h.Store(uint64(text&^(1<<26-1)) + 1<<27)
	return &h
}()

// Map copies p into fresh executable memory.
func Map(p *Program) (*Code, error) {
	n := (len(p.Text) + 4095) &^ 4095
	ptr, err := sys.MmapAnonNear(uintptr(nextHint.Add(uint64(n)))-uintptr(n), n)
	if err != nil {
		return nil, fmt.Errorf("jit: map code: %w", err)
	}
	mem := unsafe.Slice((*byte)(ptr), n)
	copy(mem, p.Text)
	// Pad with int3 so a stray jump past the end traps.
	for i := len(p.Text); i < n; i++ {
		mem[i] = 0xcc
	}
	if err := sys.ProtectExec(mem); err != nil {
		sys.MunmapPtr(ptr, n)
		return nil, fmt.Errorf("jit: protect code: %w", err)
	}
	base := uintptr(unsafe.Pointer(&mem[0]))
	c := &Code{text: mem, entry: base, resume: base + uintptr(p.Resume), retPC: p.RetPC, next: p.StepNext, MaxCtx: p.MaxCtx,
		NeedsRegions: p.NeedsRegions, NeedsBudget: p.NeedsBudget, NeedsCtxBase: p.NeedsCtxBase,
		NeedsSetup: p.NeedsRegions || p.NeedsBudget || p.NeedsCtxBase, Groups: p.Groups}
	c.enter, c.resumeFn = funcOf(c.entry), funcOf(c.resume)
	runtime.AddCleanup(c, func(p unsafe.Pointer) { sys.MunmapPtr(p, n) }, ptr)
	return c, nil
}

// Enter runs the code from its start with r1 = the context's address, r2
// = its length and r10 = ctx.Top; it returns r0 and the exit code.
func (c *Code) Enter(ctx *Context, r1, r2 uint64) (r0, exit uint64) {
	return c.enter(ctx, r1, r2)
}

// Entry is the address of the code's main entry, for Call.
func (c *Code) Entry() uintptr { return c.entry }

// Call runs the code whose entry address is stored at *pc, as Enter
// does. The func value Go calls is pc itself (a func value points to a
// word holding the code address), so a caller that keeps the address in
// its own struct (VM) pays one load for the call target instead of two
// (the Code, then its func value's word); inlined, pc is a LEAQ.
func Call(pc *uintptr, ctx *Context, r1, r2 uint64) (r0, exit uint64) {
	return (*(*entryFunc)(unsafe.Pointer(&pc)))(ctx, r1, r2)
}

// Resume continues the code after an exit to Go (ExitHelper),
// registers from ctx.Regs.
func (c *Code) Resume(ctx *Context) (r0, exit uint64) { return c.resumeFn(ctx, 0, 0) }

// FaultPC maps ctx.RetAddr of an ExitFault to the instruction.
func (c *Code) FaultPC(ctx *Context) int {
	pc, ok := c.retPC[int(ctx.RetAddr-c.entry)]
	if !ok {
		return -1
	}
	return pc
}

// Step serves an ExitStep: it returns the instruction whose access Go
// must perform and makes the next Resume continue past that access (-1:
// not a step of this code).
func (c *Code) Step(ctx *Context) int {
	off := int(ctx.RetAddr - c.entry)
	pc, ok := c.retPC[off]
	next, ok2 := c.next[off]
	if !ok || !ok2 {
		return -1
	}
	ctx.Resume = c.entry + uintptr(next)
	return pc
}

// Base is the address of the code (tests read /proc/self/maps for it).
func (c *Code) Base() uintptr { return c.entry }
