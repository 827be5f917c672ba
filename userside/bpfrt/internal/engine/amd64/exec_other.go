//go:build !(amd64 && linux)

package amd64

// Supported reports whether this platform runs compiled programs.
const Supported = false

// Code is a mapped program; never produced on this platform.
type Code struct {
	MaxCtx                                              uint64
	NeedsRegions, NeedsBudget, NeedsCtxBase, NeedsSetup bool
	Groups                                              int
}

// Map fails: no JIT on this platform.
func Map(p *Program) (*Code, error) { return nil, ErrNotSupported }

// Enter is never reached on this platform.
func (c *Code) Enter(ctx *Context, r1, r2 uint64) (r0, exit uint64) { panic("jit: not supported") }

// Entry is never reached on this platform.
func (c *Code) Entry() uintptr { return 0 }

// Call is never reached on this platform.
func Call(pc *uintptr, ctx *Context, r1, r2 uint64) (r0, exit uint64) {
	panic("jit: not supported")
}

// Resume is never reached on this platform.
func (c *Code) Resume(ctx *Context) (r0, exit uint64) { panic("jit: not supported") }

// FaultPC is never reached on this platform.
func (c *Code) FaultPC(ctx *Context) int { return -1 }

// Base is never reached on this platform.
func (c *Code) Base() uintptr { return 0 }

// Step is never reached on this platform.
func (c *Code) Step(ctx *Context) int { return -1 }
