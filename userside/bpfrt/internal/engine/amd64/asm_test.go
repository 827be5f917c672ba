package amd64

import (
	"encoding/hex"
	"testing"
	"unsafe"

	"golang.org/x/arch/x86/x86asm"

	"github.com/kushm/kushm/userside/bpfrt/internal/isa"
)

// TestEncoder: each form the compiler emits, with its expected bytes and
// their disassembly by golang.org/x/arch (Intel syntax), so both the bytes
// and their meaning are pinned.
func TestEncoder(t *testing.T) {
	cases := []struct {
		emit func(a *asm)
		hex  string
		dis  string
	}{
		{func(a *asm) { a.aluRR(aluAdd, true, RAX, RDI) }, "4801f8", "add rax, rdi"},
		{func(a *asm) { a.aluRR(aluSub, true, R13, R15) }, "4d29fd", "sub r13, r15"},
		{func(a *asm) { a.aluRR(aluXor, false, RCX, RCX) }, "31c9", "xor ecx, ecx"},
		{func(a *asm) { a.aluRR(aluCmp, true, RSI, R9) }, "4c39ce", "cmp rsi, r9"},
		{func(a *asm) { a.aluRI(aluAnd, false, reg(RBX), 0xff) }, "81e3ff000000", "and ebx, 0xff"},
		{func(a *asm) { a.aluRI(aluSub, true, mem(R12, offBudget), 7) }, "49836c245807", "sub qword ptr [r12+0x58], 0x7"},
		{func(a *asm) { a.aluRI(aluCmp, true, reg(RSI), -1) }, "4883feff", "cmp rsi, -0x1"},
		{func(a *asm) { a.movRR(true, R10, RAX) }, "4989c2", "mov r10, rax"},
		{func(a *asm) { a.movRR(false, RDX, RDX) }, "89d2", "mov edx, edx"},
		{func(a *asm) { a.movImm(RAX, 0) }, "31c0", "xor eax, eax"},
		{func(a *asm) { a.movImm(R15, 1) }, "41bf01000000", "mov r15d, 0x1"},
		{func(a *asm) { a.movImm(RBX, 0xffffffffffffffff) }, "48c7c3ffffffff", "mov rbx, -0x1"},
		{func(a *asm) { a.movImm(R8, 0x123456789) }, "49b88967452301000000", "mov r8, 0x123456789"},
		{func(a *asm) { a.load(RSI, mem(RCX, 16), 8, false) }, "488b7110", "mov rsi, qword ptr [rcx+0x10]"},
		{func(a *asm) { a.load(RAX, mem(R12, 8), 8, false) }, "498b442408", "mov rax, qword ptr [r12+0x8]"},
		{func(a *asm) { a.load(RDI, mem(RBP, -8), 1, false) }, "0fb67df8", "movzx edi, byte ptr [rbp-0x8]"},
		{func(a *asm) { a.load(R9, mem(R11, 0), 2, true) }, "4d0fbf4b00", "movsx r9, word ptr [r11]"},
		{func(a *asm) { a.load(R13, mem(R11, 0), 4, true) }, "4d636b00", "movsxd r13, dword ptr [r11]"},
		{func(a *asm) { a.store(mem(R11, 0), RSI, 1) }, "41887300", "mov byte ptr [r11], sil"},
		{func(a *asm) { a.store(mem(RBP, -2), RDI, 2) }, "66897dfe", "mov word ptr [rbp-0x2], di"},
		{func(a *asm) { a.storeImm(mem(RCX, 4), -1, 8) }, "48c74104ffffffff", "mov qword ptr [rcx+0x4], -0x1"},
		{func(a *asm) { a.storeImm(mem(RCX, 4), 0x1234, 2) }, "66c741043412", "mov word ptr [rcx+0x4], 0x1234"},
		{func(a *asm) { a.imulRI(true, RCX, frameSize) }, "4869c928000000", "imul rcx, rcx, 0x28"},
		{func(a *asm) { a.imulRR(false, RBX, R14) }, "410fafde", "imul ebx, r14d"},
		{func(a *asm) { a.shiftImm(shl, true, RDX, 3) }, "48c1e203", "shl rdx, 0x3"},
		{func(a *asm) { a.shiftCL(sar, false, R8) }, "41d3f8", "sar r8d, cl"},
		{func(a *asm) { a.f7(7, true, reg(RCX)) }, "48f7f9", "idiv rcx"},
		{func(a *asm) { a.f7(6, false, reg(RCX)) }, "f7f1", "div ecx"},
		{func(a *asm) { a.f7(3, true, reg(R14)) }, "49f7de", "neg r14"},
		{func(a *asm) { a.cqo(true) }, "4899", "cqo"},
		{func(a *asm) { a.movsx(true, RAX, RSI, 8) }, "480fbec6", "movsx rax, sil"},
		{func(a *asm) { a.movsx(false, RAX, RDI, 16) }, "0fbfc7", "movsx eax, di"},
		{func(a *asm) { a.movsx(true, RDX, R9, 32) }, "4963d1", "movsxd rdx, r9d"},
		{func(a *asm) { a.movzx16(R13, R13) }, "450fb7ed", "movzx r13d, r13w"},
		{func(a *asm) { a.bswap(true, R15) }, "490fcf", "bswap r15"},
		{func(a *asm) { a.bswap(false, RAX) }, "0fc8", "bswap eax"},
		{func(a *asm) { a.rol16by8(RBX) }, "66c1c308", "rol bx, 0x8"},
		{func(a *asm) { a.testRI(true, reg(RSI), 4) }, "48f7c604000000", "test rsi, 0x4"},
		{func(a *asm) { a.testRR(false, RCX, RCX) }, "85c9", "test ecx, ecx"},
		{func(a *asm) { a.lea(R11, mem(RDI, -16)) }, "4c8d5ff0", "lea r11, ptr [rdi-0x10]"},
		{func(a *asm) { a.jmpMem(mem(RCX, offFrames)) }, "ffa1a8000000", "jmp qword ptr [rcx+0xa8]"},
		{func(a *asm) { a.pop(R10) }, "415a", "pop r10"},
		{func(a *asm) { a.ret() }, "c3", "ret"},
		{func(a *asm) { a.cmpByteImm(mem(RCX, 24), 0) }, "80791800", "cmp byte ptr [rcx+0x18], 0x0"},
		{func(a *asm) { a.lockXadd(true, mem(R11, 0), RCX) }, "f0490fc14b00", "lock xadd qword ptr [r11], rcx"},
		{func(a *asm) { a.lockCmpxchg(false, mem(R11, 0), RSI) }, "f0410fb17300", "lock cmpxchg dword ptr [r11], esi"},
		{func(a *asm) { a.xchg(true, mem(R11, 0), RDI) }, "49877b00", "xchg qword ptr [r11], rdi"},
		{func(a *asm) { l := a.newLabel(); a.bind(l); a.jcc(ccB, l) }, "0f82faffffff", "jb .-0x6"},
		{func(a *asm) { l := a.newLabel(); a.jmp(l); a.bind(l) }, "e900000000", "jmp .+0x0"},
		{func(a *asm) { l := a.newLabel(); a.leaLabel(RCX, l); a.bind(l) }, "488d0d00000000", "lea rcx, ptr [rip]"},
	}
	for _, c := range cases {
		var a asm
		c.emit(&a)
		got := hex.EncodeToString(a.finish())
		if got != c.hex {
			t.Errorf("%s: bytes %s, want %s", c.dis, got, c.hex)
			continue
		}
		if c.dis == "" {
			continue
		}
		in, err := x86asm.Decode(a.b, 64)
		if err != nil {
			t.Errorf("%s: decode: %v", c.hex, err)
			continue
		}
		if in.Len != len(a.b) {
			t.Errorf("%s: decoded %d of %d bytes", c.hex, in.Len, len(a.b))
		}
		dis := x86asm.IntelSyntax(in, 0, nil)
		if dis != c.dis {
			t.Errorf("%s: disassembles to %q, want %q", c.hex, dis, c.dis)
		}
	}
}

// TestContextOffsets: the offsets generated code uses are the Go layout.
func TestContextOffsets(t *testing.T) {
	var c Context
	var f Frame
	check := func(name string, got uintptr, want int) {
		if int(got) != want {
			t.Errorf("%s: offset %d, generated code uses %d", name, got, want)
		}
	}
	check("Regs", unsafe.Offsetof(c.Regs), offRegs)
	check("Budget", unsafe.Offsetof(c.Budget), offBudget)
	check("Depth", unsafe.Offsetof(c.Depth), offDepth)
	check("Regions", unsafe.Offsetof(c.Regions), offRegions)
	check("Exit", unsafe.Offsetof(c.Exit), offExit)
	check("PC", unsafe.Offsetof(c.PC), offPC)
	check("Arg", unsafe.Offsetof(c.Arg), offArg)
	check("Addr", unsafe.Offsetof(c.Addr), offAddr)
	check("Resume", unsafe.Offsetof(c.Resume), offResume)
	check("RetAddr", unsafe.Offsetof(c.RetAddr), offRetAddr)
	check("CtxBase", unsafe.Offsetof(c.CtxBase), offCtxBase)
	check("Frames", unsafe.Offsetof(c.Frames), offFrames)
	check("Frame size", unsafe.Sizeof(f), frameSize)
	check("Frame.Ret", unsafe.Offsetof(f.Ret), frameRet)
	check("Frame.Saved", unsafe.Offsetof(f.Saved), frameSaved)
}

// TestCompileDisassembles: a compiled program decodes cleanly from start
// to end (no byte the processor would read as garbage).
func TestCompileDisassembles(t *testing.T) {
	in := []isa.Insn{
		{Op: isa.OpLdxCtxDW, Dst: 2, Src: 1, Off: 8, Imm: 16},
		{Op: isa.OpJlt64K, Dst: 2, Imm: 1, Jt: 4},
		{Op: isa.OpMov64K, Dst: 0, Imm: 1},
		{Op: isa.OpExit},
		{Op: isa.OpMov64K, Dst: 0, Imm: 0},
		{Op: isa.OpExit},
	}
	p, err := Compile(in, []isa.Func{{Start: 0, End: 6}}, Options{Regions: 2, StackBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if p.MaxCtx != 16 {
		t.Errorf("MaxCtx %d", p.MaxCtx)
	}
	for off := 0; off < len(p.Text); {
		d, err := x86asm.Decode(p.Text[off:], 64)
		if err != nil {
			t.Fatalf("offset %d: %v", off, err)
		}
		off += d.Len
	}
}
