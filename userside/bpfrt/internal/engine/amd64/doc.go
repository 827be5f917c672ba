// Package amd64 is the pure-Go x86-64 JIT of userside/bpfrt (no cgo),
// in wazero's shape: checked, pre-decoded instructions (internal/isa) in,
// machine code out.
//
// Entry: Go calls the code as a func(*Context, r1, r2) value whose code
// pointer is the mapping (ABIInternal: the Context arrives in RAX, r1 in
// RBX, r2 in RCX; r10 is Context.Top, loaded only by code that uses it):
// one indirect call, no assembly trampoline and no ABI wrapper (a
// trampoline measured about twice the cost of a bare call here). Call
// takes the address of a word holding the entry (the VM keeps one), so
// the call target is one load. The prologue saves R14 (g)
// and RBP on the goroutine stack and loads R12 (unless nothing in the
// code names R12: no exit to Go, no bounds check, no budget); every exit
// restores them.
// A program that uses neither r8 (R14) nor r10 (RBP: no stack access),
// calls no helper or function and reaches no volatile entry runs
// frameless: it never writes either register, so it saves neither, and
// the entry moves only the arguments the program uses (a filter's entry
// is one move: the context base into RCX).
// Code is mapped near Go's text (an mmap hint): on the machine measured a
// call into code 128 TiB away cost 0.8 ns more (quiet) to 7 ns more
// (loaded) than into code 128 MiB away.
//
// Code generation: a fixed register mapping (r0 RAX, r1 RDI, r2 RSI, r3
// RDX, r4 R9, r5 R8, r6 RBX, r7 R13, r8 R14, r9 R15, r10 RBP; RCX, R10,
// R11 scratch; R12 the Context). Program code uses 16 bytes of the
// goroutine stack (saved R14, RBP) and one more return address in the
// bounds-check subroutines; bpf-to-bpf frames live in the Context and the
// program's own stack (r10) in the VM. Compile assembles twice: every
// jmp/jcc whose displacement fitted in 8 bits in the first pass is rel8
// in the second (code only shrinks between the passes; finish checks the
// range), the others rel32; memory operands are disp8 or disp32 and ALU
// immediates imm8 or imm32 (table-tested).
//
// Filter predicates: "rD = *(u64 *)(ctx + k); if rD <op> imm goto L" with
// rD dead on both paths loads into the scratch R10 and compares it (cmp
// reg, imm fuses with the jcc; cmp mem, imm does not on the Zen 4
// measured). With Options.AVX2, four such predicates in a row with the
// same op (not jset) and target, on four adjacent fields in any order,
// are one group: one 32-byte load of the fields, one vpcmpgtq or vpcmpeqq
// with the four immediates (a 32-byte constant after the code, at
// Program.Data), one branch on the lane mask (unsigned compares flip the
// sign bits of both sides: the fields with the vector in ymm2, loaded
// before the first such group after any entry, resumption or jump
// target; the immediates at compile time). The result is the
// interpreter's whichever predicate of the group jumps first: none writes
// a register or memory, and the load is inside MaxCtx as each field is.
// The code uses ymm0-ymm2 (caller-saved in Go's ABI; X15, Go's zero, is
// never touched) and clears the upper halves before every return to Go
// (vzeroupper). Filter-bench's N = 50 chain is 12 groups and 2 single
// predicates: 5.5-6.2 ns a run against 9.3-9.4 ns for the scalar code
// (docs/benchmarks.md, "Follow-up (jitfuse)").
//
// Safety: accesses the checker proved inside the stack frame run
// unchecked; constant-offset context accesses run unchecked once the
// caller has compared the context length with Program.MaxCtx; every
// other load, store or atomic walks the VM's region table (the one the
// interpreter uses) in a subroutine that returns, or exits with
// ExitFault. Entries marked volatile at compile time (Options.Volatile:
// memory mapped from a file that may shrink under the mapping, where a
// load raises SIGBUS, which the Go runtime cannot recover at a PC in this
// code) are never accessed by generated code: a check that resolves to
// one saves the registers and exits with ExitStep; Go performs that one
// access with the interpreter's code (where a fault is a recoverable
// panic under shm.Guard) and resumes past it (Code.Step). The caller
// runs a context in such memory on the interpreter. Division never reaches the processor's #DE: zero divisors
// and MIN/-1 take RFC 9669's results before it. Back edges and calls
// charge Context.Budget as the interpreter charges its budget, calls are
// bounded by isa.MaxCallDepth: the code exits with ExitBudget or
// ExitDepth, never loops or overflows.
//
// Exits (wazero's pattern): a helper call saves every register in the
// Context and returns to Go with ExitHelper, the instruction and the
// helper; Go runs the helper and re-enters at the resume entry, which
// reloads the registers. Atomics and bpf_map_lookup_elem on array maps
// (key on the stack) run inline. Every exit returns r0 in RAX and the
// exit code in RBX.
//
// Memory and lifetimes: Map copies the code into an anonymous mapping
// made read+write, then read+execute (never both); the mapping is
// released by a cleanup when the Code becomes unreachable. A Code is
// immutable and safe for concurrent use; a Context is per run (one VM).
//
// Errors: Compile returns an error only for instructions it does not know
// (a checker/engine mismatch); Map fails when the kernel refuses the
// mapping; ErrNotSupported off amd64 Linux.
package amd64
