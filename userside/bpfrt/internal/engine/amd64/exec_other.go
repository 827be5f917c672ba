//go:build !(amd64 && linux)

package amd64

// Supported reports whether this platform runs compiled programs.
const Supported = false

// Code is a mapped program; never produced on this platform.
type Code struct{ MaxCtx uint64 }

// Map fails: no JIT on this platform.
func Map(p *Program) (*Code, error) { return nil, ErrNotSupported }

// Run is never reached on this platform.
func (c *Code) Run(ctx *Context, resume bool) { panic("jit: not supported") }

// FaultPC is never reached on this platform.
func (c *Code) FaultPC(ctx *Context) int { return -1 }

// Base is never reached on this platform.
func (c *Code) Base() uintptr { return 0 }
