// Package bpfrt is kushm's userspace eBPF runtime: it checks and runs eBPF
// programs (RFC 9669, ISA v4) inside the process, with the same helper and
// kfunc names as kernel eBPF, so one BPF C object runs in the kernel and
// here at a cost of nanoseconds instead of a system call.
//
// Loading: LoadRaw takes raw instructions, LoadELF a clang-compiled BPF
// object (parsed with cilium/ebpf, never loaded into the kernel). Map
// references resolve to process-local maps (NewMap) or to maps the
// application passes by name; kfunc calls (extern ... __ksym) resolve by
// name to Helpers, the bpf_kushm_* ones over a Kushm implementation.
//
// Safety model (docs/userspace-ebpf.md): before a program runs, the
// checker validates every opcode and field, keeps jumps inside their
// function, refuses fall-through past the end, proves every register is
// initialised before it is read and checks helper arguments against the
// helper's signature. It tracks context and stack pointers with constant
// offsets: stack accesses are proven inside the frame, context accesses
// cost one length comparison, any other access is checked at run time
// against the VM's table of regions (context, stack, map values, Memory).
// Backward jumps and calls draw on an instruction budget (Options.Budget);
// calls nest at most MaxCallDepth deep. A refused program gets a *VerifierError wrapping
// ErrInvalidProgram naming the instruction and the reason; a run that goes
// wrong stops with a *RuntimeError wrapping ErrOutOfBounds, ErrBudget,
// ErrCallDepth, ErrMisaligned or ErrHelper. No program can crash or
// corrupt the process.
//
// Engines (Options.Engine, EngineAuto by default): the checker
// (internal/verifier) emits internal/isa instructions; on amd64 Linux
// they are compiled to machine code by a pure-Go JIT
// (internal/engine/amd64); elsewhere, or with EngineInterp, the
// interpreter (internal/engine/interp) runs them. Both run the same checked instructions with the
// same region table, budget, call depth and errors: the JIT checks every
// access the checker could not prove safe in the generated code, and a
// run whose context is shorter than the program's constant-offset
// accesses runs on the interpreter (which faults at the exact
// instruction). Program.Engine says which engine a program got; Program.As
// gives the same program on the other. Options.MaskShifts is the RFC 9669
// mode for out-of-range immediate shifts (the conformance plugin's).
//
// Beyond running programs: RegionMap exposes region tables as read-only
// maps; NewRegionKushm implements the kfuncs over a mapped region;
// Tracepoint and TypedTracepoint are user tracepoints whose attached BPF
// filter decides which events reach a region's trace Ring; LoadKernel and
// SideBySide run the same object in the kernel through BPF_PROG_TEST_RUN;
// ConformancePlugin is the bpf_conformance plugin protocol.
//
// Lifetimes: a Program is immutable and safe for concurrent use; a VM is
// not (one per goroutine, or Program.Run with its pool). Maps live as long
// as any program using them; pointers programs obtain into map values stay
// valid for the map's lifetime. Memory handed to a helper through a Call
// is valid only during the call.
package bpfrt
