//go:build amd64 && linux

package amd64

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/kushm/kushm/internal/sys"
)

// Supported reports whether this platform runs compiled programs.
const Supported = true

// enter runs generated code at pc with R12 = c (enter_amd64.s).
//
//go:noescape
func enter(pc uintptr, c *Context)

// Code is a program mapped executable: written while read+write, then
// switched to read+execute (never both writable and executable). Close
// unmaps it; an unreachable Code is unmapped by a cleanup.
type Code struct {
	text   []byte
	entry  uintptr
	resume uintptr
	retPC  map[int]int
	MaxCtx uint64
}

// Map copies p into fresh executable memory.
func Map(p *Program) (*Code, error) {
	n := (len(p.Text) + 4095) &^ 4095
	mem, err := sys.MmapAnon(n)
	if err != nil {
		return nil, fmt.Errorf("jit: map code: %w", err)
	}
	copy(mem, p.Text)
	// Pad with int3 so a stray jump past the end traps.
	for i := len(p.Text); i < n; i++ {
		mem[i] = 0xcc
	}
	if err := sys.ProtectExec(mem); err != nil {
		sys.Munmap(mem)
		return nil, fmt.Errorf("jit: protect code: %w", err)
	}
	base := uintptr(unsafe.Pointer(&mem[0]))
	c := &Code{text: mem, entry: base, resume: base + uintptr(p.Resume), retPC: p.RetPC, MaxCtx: p.MaxCtx}
	runtime.AddCleanup(c, func(m []byte) { sys.Munmap(m) }, mem)
	return c, nil
}

// Run enters the code at its start (resume false) or at the resume entry
// after an exit to Go.
func (c *Code) Run(ctx *Context, resume bool) {
	pc := c.entry
	if resume {
		pc = c.resume
	}
	enter(pc, ctx)
}

// FaultPC maps ctx.RetAddr of an ExitFault to the instruction.
func (c *Code) FaultPC(ctx *Context) int {
	pc, ok := c.retPC[int(ctx.RetAddr-c.entry)]
	if !ok {
		return -1
	}
	return pc
}

// Base is the address of the code (tests read /proc/self/maps for it).
func (c *Code) Base() uintptr { return c.entry }
