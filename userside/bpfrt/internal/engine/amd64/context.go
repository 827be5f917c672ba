package amd64

import "github.com/kushm/kushm/userside/bpfrt/internal/isa"

// Context is the memory generated code works on, besides the program's
// stack and its regions: R12 points to it while the code runs. Its layout
// is fixed by the offsets below (checked against unsafe.Offsetof by a
// test); Go owns it between runs and while a helper runs.
type Context struct {
	Regs    [11]uint64 // r0..r10, saved at every exit, loaded at resume
	Budget  uint64     // instructions left, charged at back edges and calls
	Depth   uint64     // current bpf-to-bpf call depth (0: main program)
	Regions uintptr    // address of the region table (Region entries)
	Exit    uint64     // why the code returned: Exit*
	PC      uint64     // instruction of the exit (helper call, fault, step)
	Arg     uint64     // ExitHelper: helper index; ExitFault: size | write<<8
	Addr    uint64     // ExitFault: the address
	Resume  uintptr    // where ResumeEntry continues
	RetAddr uintptr    // ExitFault: return address of the failed check
	CtxBase uint64     // the context's address (constant-offset accesses)
	Frames  [isa.MaxCallDepth]Frame
	// Top is r10 at entry, the main frame's top (the VM's stack), set
	// once per VM: the entry loads it only when the code uses r10, so
	// Go passes no argument for it (a load saved on every run).
	Top uint64
}

// Frame is one bpf-to-bpf call: where to return, and r6-r9 to restore.
type Frame struct {
	Ret   uintptr
	Saved [4]uint64
}

// Offsets of Context and Frame used by generated code.
const (
	offRegs     = 0
	offBudget   = 88
	offDepth    = 96
	offRegions  = 104
	offExit     = 112
	offPC       = 120
	offArg      = 128
	offAddr     = 136
	offResume   = 144
	offRetAddr  = 152
	offCtxBase  = 160
	offFrames   = 168
	offTop      = offFrames + isa.MaxCallDepth*frameSize
	frameSize   = 40
	frameRet    = 0
	frameSaved  = 8
	regionSize  = 32 // bytes of one region table entry
	regionStart = 0  // offset of its start address
	regionLen   = 8  // offset of its size
	regionWrite = 24 // offset of its writable byte
)

// Exit codes.
const (
	ExitReturn     = iota // r0 returned in RAX
	ExitHelper            // call helper Arg for instruction PC, then resume
	ExitFault             // memory access out of bounds: Addr, Arg, RetAddr
	ExitBudget            // budget exhausted at PC
	ExitDepth             // call depth exceeded at PC
	ExitMisaligned        // atomic access at Addr not aligned to its size, at PC
	// ExitStep: the access checked at RetAddr resolves to a volatile
	// region entry (memory that may shrink under its mapping): Go performs
	// the instruction (Code.Step gives it and sets the resume point past
	// it), then resumes. Addr, Arg as for ExitFault.
	ExitStep
)

// Region layout the generated checks assume; the runtime's region table
// must match it (checked by a test in userside/bpfrt).
const (
	RegionSize        = regionSize
	RegionStartOff    = regionStart
	RegionLenOff      = regionLen
	RegionWritableOff = regionWrite
)
