package amd64

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
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
		// AVX2 (predicate groups): the three-byte VEX form; bytes as GNU
		// as encodes them with {vex3}. x86asm (v0.33) decodes a VEX
		// instruction's [rip+disp32] without its base: "[-0x9]" below
		// is [rip-0x9] (GNU objdump), the instruction's own start.
		{func(a *asm) { a.vmovdqu(0, mem(RCX, 0x10)) }, "c4e17e6f4110", "vmovdqu ymm0, ymmword ptr [rcx+0x10]"},
		{func(a *asm) { l := a.newLabel(); a.bind(l); a.vmovdqu(2, ripLabel(l)) }, "c4e17e6f15f7ffffff", "vmovdqu ymm2, ymmword ptr [-0x9]"},
		{func(a *asm) { a.vpxor(0, 2, mem(RCX, 0x80)) }, "c4e16def8180000000", "vpxor ymm0, ymm2, ymmword ptr [rcx+0x80]"},
		{func(a *asm) { a.vpxor(0, 2, mem(R12, 8)) }, "c4c16def442408", "vpxor ymm0, ymm2, ymmword ptr [r12+0x8]"},
		{func(a *asm) { a.vpcmpgtq(0, 1, reg(0)) }, "c4e27537c0", "vpcmpgtq ymm0, ymm1, ymm0"},
		{func(a *asm) { l := a.newLabel(); a.bind(l); a.vpcmpgtq(0, 0, ripLabel(l)) }, "c4e27d3705f7ffffff", "vpcmpgtq ymm0, ymm0, ymmword ptr [-0x9]"},
		{func(a *asm) { a.vpcmpeqq(0, 0, mem(RCX, 8)) }, "c4e27d294108", "vpcmpeqq ymm0, ymm0, ymmword ptr [rcx+0x8]"},
		{func(a *asm) { a.vmovmskpd(R11, 0) }, "c4617d50d8", "vmovmskpd r11d, ymm0"},
		{func(a *asm) { a.vmovmskpd(RAX, 1) }, "c4e17d50c1", "vmovmskpd eax, ymm1"},
		{func(a *asm) { a.vzeroupper() }, "c5f877", "vzeroupper"},
		// rel8 jumps, where the first pass found the target near
		{func(a *asm) { a.near = []bool{true}; l := a.newLabel(); a.bind(l); a.jcc(ccB, l) }, "72fe", "jb .-0x2"},
		{func(a *asm) { a.near = []bool{true}; l := a.newLabel(); a.jmp(l); a.bind(l) }, "eb00", "jmp .+0x0"},
		{func(a *asm) {
			a.near = []bool{false, true}
			l := a.newLabel()
			a.jcc(ccNE, l)
			a.jcc(ccA, l)
			a.bind(l)
		}, "0f85020000007700", ""},
		{func(a *asm) {
			a.near = []bool{true}
			l := a.newLabel()
			a.jcc(ccAE, l)
			a.b = append(a.b, make([]byte, 127)...)
			a.bind(l)
		}, "737f" + strings.Repeat("00", 127), ""},
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
	check("Top", unsafe.Offsetof(c.Top), offTop)
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

// TestShortJumpRange: a rel8 jump to a target out of its range is a
// compiler bug; finish refuses it rather than emit a wrong jump.
func TestShortJumpRange(t *testing.T) {
	var a asm
	a.near = []bool{true}
	l := a.newLabel()
	a.jcc(ccB, l)
	a.b = append(a.b, make([]byte, 128)...)
	a.bind(l)
	defer func() {
		if recover() == nil {
			t.Fatal("rel8 displacement 128 accepted")
		}
	}()
	a.finish()
}

// TestNearJumps: the first pass's table marks exactly the jumps whose
// displacement fits in 8 bits, and a second pass with it assembles them
// as rel8 and patches every displacement to the same targets.
func TestNearJumps(t *testing.T) {
	emit := func(a *asm) {
		top, far, near := a.newLabel(), a.newLabel(), a.newLabel()
		a.bind(top)
		a.jcc(ccB, near) // +4 bytes: near
		a.jcc(ccE, far)  // past 200 bytes: far
		a.aluRR(aluXor, false, RCX, RCX)
		a.bind(near)
		a.b = append(a.b, make([]byte, 200)...)
		a.bind(far)
		a.jmp(top) // back 200+ bytes: far
		a.jmp(far) // back 0 bytes... -5 from its end: near
	}
	var a1 asm
	emit(&a1)
	a1.finish()
	want := []bool{true, false, false, true}
	got := a1.nearJumps()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("near %v, want %v", got, want)
		}
	}
	a2 := asm{near: got}
	emit(&a2)
	code := a2.finish()
	// decode the jumps (skipping the filler) and check their lengths and
	// targets: jb near at 0, je far at 2, near at 10, far at 210
	type jt struct{ at, len, target int }
	var jumps []jt
	for off := 0; off < len(code); {
		if off >= 10 && off < 10+200 { // the filler
			off = 10 + 200
			continue
		}
		in, err := x86asm.Decode(code[off:], 64)
		if err != nil {
			t.Fatalf("offset %d: %v", off, err)
		}
		if rel, ok := in.Args[0].(x86asm.Rel); ok {
			jumps = append(jumps, jt{off, in.Len, off + in.Len + int(rel)})
		}
		off += in.Len
	}
	wantJ := []jt{{0, 2, 10}, {2, 6, 210}, {210, 5, 0}, {215, 2, 210}}
	if len(jumps) != len(wantJ) {
		t.Fatalf("jumps %v, want %v", jumps, wantJ)
	}
	for i := range wantJ {
		if jumps[i] != wantJ[i] {
			t.Errorf("jump %d: %+v, want %+v", i, jumps[i], wantJ[i])
		}
	}
}

// TestFrameless: a program that uses neither r8 (R14, Go's g) nor r10
// (RBP, Go's frame pointer) saves and restores neither: its entry starts
// with the Context move and no push or pop of R14/RBP appears anywhere
// in its code (the resume entry loads neither). Any use of r8 or r10 (a
// stack access reads r10), a helper call or a volatile entry brings the
// frame back.
func TestFrameless(t *testing.T) {
	filter := []isa.Insn{
		{Op: isa.OpLdxCtxDW, Dst: 2, Src: 1, Off: 8, Imm: 16},
		{Op: isa.OpJlt64K, Dst: 2, Imm: 1, Jt: 4},
		{Op: isa.OpMov64K, Dst: 0, Imm: 1},
		{Op: isa.OpExit},
		{Op: isa.OpMov64K, Dst: 0, Imm: 0},
		{Op: isa.OpExit},
	}
	with := func(in isa.Insn) []isa.Insn {
		return append([]isa.Insn{in}, filter...)
	}
	for _, c := range []struct {
		name   string
		insns  []isa.Insn
		vol    []bool
		framed bool
	}{
		{"filter", filter, nil, false},
		{"r8", with(isa.Insn{Op: isa.OpMov64K, Dst: 8, Imm: 3}), nil, true},
		{"r10-read", with(isa.Insn{Op: isa.OpMov64X, Dst: 3, Src: 10}), nil, true},
		{"stack", with(isa.Insn{Op: isa.OpStStkDW, Dst: 10, Off: -8, Jt: 1}), nil, true},
		{"helper", with(isa.Insn{Op: isa.OpCall, Jt: 5}), nil, true},
		{"volatile", filter, []bool{false, false, true}, true},
		{"r9", with(isa.Insn{Op: isa.OpMov64K, Dst: 9, Imm: 3}), nil, false},
	} {
		p, err := Compile(c.insns, []isa.Func{{Start: 0, End: len(c.insns)}}, Options{Regions: 3, StackBytes: 4096, Volatile: c.vol})
		if err != nil {
			t.Fatal(c.name, err)
		}
		first := hex.EncodeToString(p.Text[:3])
		if c.framed && first != "55"+"4156" {
			t.Errorf("%s: entry %s, want push rbp; push r14", c.name, first)
		}
		if !c.framed && (first == "55"+"4156" || p.Text[0] == 0x55) {
			t.Errorf("%s: entry %s, want no push", c.name, first)
		}
		saves := 0
		for off := 0; off < len(p.Text); {
			in, err := x86asm.Decode(p.Text[off:], 64)
			if err != nil {
				t.Fatalf("%s: offset %d: %v", c.name, off, err)
			}
			if (in.Op == x86asm.PUSH || in.Op == x86asm.POP) && (in.Args[0] == x86asm.RBP || in.Args[0] == x86asm.R14) {
				saves++
			}
			if !c.framed && in.Op == x86asm.MOV && (in.Args[0] == x86asm.RBP || in.Args[0] == x86asm.R14) {
				t.Errorf("%s: %s at %d writes Go's register", c.name, x86asm.IntelSyntax(in, 0, nil), off)
			}
			off += in.Len
		}
		if !c.framed && saves != 0 {
			t.Errorf("%s: %d pushes/pops of RBP/R14 in frameless code", c.name, saves)
		}
		if c.framed && saves == 0 {
			t.Errorf("%s: no frame saved", c.name)
		}
	}
}

// TestFilterCode pins the code of a two-predicate filter: a frameless
// entry (the Context, r2 and the context base: nothing saved), each
// predicate a load into R10 and a compare of the register (which fuses
// with its jcc; a compare of memory at a displacement with an immediate
// does not), rel8 jumps to the near fail path, the exits inline. This is
// also the code with Options.AVX2: two predicates make no group (four do:
// TestFilterGroupCode).
func TestFilterCode(t *testing.T) {
	in := []isa.Insn{
		{Op: isa.OpLdxCtxDW, Dst: 2, Src: 1, Off: 0, Imm: 8},
		{Op: isa.OpJlt64K, Dst: 2, Imm: 0, Jt: 6},
		{Op: isa.OpLdxCtxDW, Dst: 2, Src: 1, Off: 256, Imm: 264},
		{Op: isa.OpJset64K, Dst: 2, Imm: 0x1000, Jt: 6},
		{Op: isa.OpMov64K, Dst: 0, Imm: 1},
		{Op: isa.OpExit},
		{Op: isa.OpMov64K, Dst: 0, Imm: 0},
		{Op: isa.OpExit},
	}
	p, err := Compile(in, []isa.Func{{Start: 0, End: len(in)}}, Options{Regions: 2, StackBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := Compile(in, []isa.Func{{Start: 0, End: len(in)}}, Options{Regions: 2, StackBytes: 4096, AVX2: true})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Text, p2.Text) {
		t.Errorf("AVX2 changes the code of a two-predicate filter")
	}
	want := []string{
		"mov rcx, rbx",
		"mov r10, qword ptr [rcx]",
		"cmp r10, 0x0",
		"jb .+0x18",
		"mov r10, qword ptr [rcx+0x100]",
		"test r10, 0x1000",
		"jnz .+0x8",
		"mov eax, 0x1",
		"xor ebx, ebx",
		"ret",
		"xor eax, eax",
		"xor ebx, ebx",
		"ret",
	}
	off := 0
	for i, w := range want {
		d, err := x86asm.Decode(p.Text[off:], 64)
		if err != nil {
			t.Fatalf("offset %d: %v", off, err)
		}
		got := x86asm.IntelSyntax(d, 0, nil)
		if got != w {
			t.Fatalf("instruction %d at %d: %q, want %q", i, off, got, w)
		}
		if d.Op >= x86asm.JA && d.Op <= x86asm.JS && d.Op != x86asm.JMP && d.Len != 2 {
			t.Errorf("%s at %d: %d bytes, want rel8", got, off, d.Len)
		}
		off += d.Len
	}
}

// filterInsns is filter-bench's program over the fields offs: "r2 =
// field; if r2 <op> imm_i goto fail" for each, then r0 = 1; exit; fail:
// r0 = 0; exit.
func filterInsns(op uint8, offs []int32, imms []int32) []isa.Insn {
	n := len(offs)
	fail := int32(2*n + 2)
	var in []isa.Insn
	for i, off := range offs {
		in = append(in, isa.Insn{Op: isa.OpLdxCtxDW, Dst: 2, Src: 1, Off: off, Imm: uint64(off) + 8})
		in = append(in, isa.Insn{Op: op, Dst: 2, Imm: uint64(uint32(imms[i])), Jt: fail})
	}
	return append(in, isa.Insn{Op: isa.OpMov64K, Dst: 0, Imm: 1}, isa.Insn{Op: isa.OpExit},
		isa.Insn{Op: isa.OpMov64K, Dst: 0, Imm: 0}, isa.Insn{Op: isa.OpExit})
}

// TestFilterGroupCode pins the code of a five-predicate filter with AVX2:
// the first four predicates (adjacent fields, the same unsigned compare
// and target) are one group: the sign-bit vector loaded at entry, the
// fields loaded and flipped in one vpxor, compared with the constants
// (flipped at compile time) in one vpcmpgtq, one branch on the lane
// mask; the fifth is the scalar predicate; every exit clears the upper
// ymm halves. The constants follow the code, 32-byte aligned.
func TestFilterGroupCode(t *testing.T) {
	in := filterInsns(isa.OpJlt64K, []int32{0, 8, 16, 24, 32}, []int32{0, 1, 2, -3, 4})
	p, err := Compile(in, []isa.Func{{Start: 0, End: len(in)}}, Options{Regions: 2, StackBytes: 4096, AVX2: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Groups != 1 {
		t.Fatalf("%d groups, want 1", p.Groups)
	}
	want := []string{
		"mov rcx, rbx",
		"vmovdqu ymm2, ymmword ptr [BIAS]",
		"vpxor ymm0, ymm2, ymmword ptr [rcx]",
		"vmovdqu ymm1, ymmword ptr [K0]",
		"vpcmpgtq ymm0, ymm1, ymm0",
		"vmovmskpd r11d, ymm0",
		"test r11d, r11d",
		"jnz FAIL",
		"mov r10, qword ptr [rcx+0x20]",
		"cmp r10, 0x4",
		"jb FAIL",
		"mov eax, 0x1",
		"xor ebx, ebx",
		"vzeroupper",
		"ret",
		"xor eax, eax", // FAIL
		"xor ebx, ebx",
		"vzeroupper",
		"ret",
	}
	fail := -1
	var got []string
	var rips []int // targets of the [rip+disp] operands, in order
	for off := 0; off < p.Data && len(got) < len(want); {
		d, err := decode(p.Text[off:p.Data])
		if err != nil {
			t.Fatalf("offset %d: %v", off, err)
		}
		s := x86asm.IntelSyntax(d, 0, nil)
		for _, a := range d.Args {
			if m, ok := a.(x86asm.Mem); ok && m.Base == 0 && d.Op != x86asm.MOV {
				// VEX [rip+disp32] (x86asm shows it without its base)
				rips = append(rips, off+d.Len+int(m.Disp))
				s = strings.Replace(s, fmt.Sprintf("[%#x]", m.Disp), "[RIP]", 1)
				s = strings.Replace(s, fmt.Sprintf("[%#x]", uint64(m.Disp)), "[RIP]", 1)
				s = strings.Replace(s, fmt.Sprintf("[-%#x]", -m.Disp), "[RIP]", 1)
			}
			if r, ok := a.(x86asm.Rel); ok {
				tgt := off + d.Len + int(r)
				if fail < 0 {
					fail = tgt
				} else if tgt != fail {
					t.Errorf("%s at %d: target %d, want %d", s, off, tgt, fail)
				}
				s = s[:strings.IndexByte(s, ' ')] + " FAIL"
				if d.Len != 2 {
					t.Errorf("%s at %d: %d bytes, want rel8", s, off, d.Len)
				}
			}
		}
		if off == fail && s != "xor eax, eax" {
			t.Errorf("fail path starts with %q", s)
		}
		got = append(got, s)
		off += d.Len
	}
	for i := range want {
		w := strings.NewReplacer("[BIAS]", "[RIP]", "[K0]", "[RIP]").Replace(want[i])
		if i >= len(got) || got[i] != w {
			t.Fatalf("code:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	// the two constants: the sign bits, then the four immediates (sign-
	// extended from 32 bits) with their sign bits flipped
	if len(rips) != 2 {
		t.Fatalf("rip operands %v", rips)
	}
	vec := func(at int) [4]uint64 {
		if at%32 != 0 || at < p.Data || at+32 > len(p.Text) {
			t.Fatalf("constant at %d (data %d, text %d)", at, p.Data, len(p.Text))
		}
		var v [4]uint64
		for i := range v {
			v[i] = binary.LittleEndian.Uint64(p.Text[at+8*i:])
		}
		return v
	}
	const b = 1 << 63
	if v := vec(rips[0]); v != [4]uint64{b, b, b, b} {
		t.Errorf("bias %x", v)
	}
	minus3 := uint64(1<<64 - 3)
	if v := vec(rips[1]); v != [4]uint64{0 ^ b, 1 ^ b, 2 ^ b, minus3 ^ b} {
		t.Errorf("constants %x", v)
	}
}

// decode is x86asm.Decode, except that vzeroupper (c5 f8 77) is three
// bytes: x86asm v0.33 reads a ModRM byte after it when one follows (GNU
// objdump decodes c5 f8 77 c3 as vzeroupper; ret).
func decode(b []byte) (x86asm.Inst, error) {
	if len(b) >= 3 && b[0] == 0xc5 && b[1] == 0xf8 && b[2] == 0x77 {
		in, err := x86asm.Decode(b[:3], 64)
		in.Len = 3
		return in, err
	}
	return x86asm.Decode(b, 64)
}

// jumpBefore prepends "if r1 == 0 goto target" (target counted in the
// result) to a filter, moving its jumps' targets by one.
func jumpBefore(in []isa.Insn, target int32) []isa.Insn {
	for i := range in {
		if in[i].Op >= isa.OpJeq64K && in[i].Op <= isa.OpJsle64X {
			in[i].Jt++
		}
	}
	return append([]isa.Insn{{Op: isa.OpJeq64K, Dst: 1, Imm: 0, Jt: target}}, in...)
}

// TestGroupShapes: which predicate runs become groups. A group needs
// four fused predicates (the register dead after each), the same op and
// target, four adjacent fields in any order, no jump into it past its
// start, an op with a vector form (not jset) and AVX2.
func TestGroupShapes(t *testing.T) {
	seq := func(n int) []int32 {
		o := make([]int32, n)
		for i := range o {
			o[i] = int32(8 * i)
		}
		return o
	}
	imms := make([]int32, 16)
	for _, c := range []struct {
		name   string
		in     []isa.Insn
		avx2   bool
		groups int
	}{
		{"four", filterInsns(isa.OpJlt64K, seq(4), imms), true, 1},
		{"no-avx2", filterInsns(isa.OpJlt64K, seq(4), imms), false, 0},
		{"three", filterInsns(isa.OpJlt64K, seq(3), imms), true, 0},
		{"nine", filterInsns(isa.OpJgt64K, seq(9), imms), true, 2},
		{"shuffled", filterInsns(isa.OpJsge64K, []int32{16, 0, 24, 8}, imms), true, 1},
		{"gap", filterInsns(isa.OpJeq64K, []int32{0, 8, 16, 32}, imms), true, 0},
		{"repeat", filterInsns(isa.OpJne64K, []int32{0, 8, 8, 16}, imms), true, 0},
		{"unaligned", filterInsns(isa.OpJle64K, []int32{4, 12, 20, 28}, imms), true, 0},
		{"jset", filterInsns(isa.OpJset64K, seq(4), imms), true, 0},
		{"mixed-ops", func() []isa.Insn {
			in := filterInsns(isa.OpJlt64K, seq(4), imms)
			in[5].Op = isa.OpJle64K
			return in
		}(), true, 0},
		{"mixed-targets", func() []isa.Insn {
			in := filterInsns(isa.OpJlt64K, seq(4), imms)
			in[3].Jt = 9 // r0 = 1's exit
			return in
		}(), true, 0},
		// a jump before the four predicates to the third one's load, or
		// to the first one's
		{"jump-into", jumpBefore(filterInsns(isa.OpJlt64K, seq(4), imms), 5), true, 0},
		{"jump-to-start", jumpBefore(filterInsns(isa.OpJlt64K, seq(4), imms), 1), true, 1},
		{"live", func() []isa.Insn {
			in := filterInsns(isa.OpJlt64K, seq(4), imms)
			in[8] = isa.Insn{Op: isa.OpMov64X, Dst: 0, Src: 2} // r0 = r2 reads the last field
			return in
		}(), true, 0},
	} {
		p, err := Compile(c.in, []isa.Func{{Start: 0, End: len(c.in)}}, Options{Regions: 2, StackBytes: 4096, AVX2: c.avx2})
		if err != nil {
			t.Fatal(c.name, err)
		}
		if p.Groups != c.groups {
			t.Errorf("%s: %d groups, want %d", c.name, p.Groups, c.groups)
		}
		if (p.Groups > 0) != (p.Data < len(p.Text)) {
			t.Errorf("%s: data at %d of %d with %d groups", c.name, p.Data, len(p.Text), p.Groups)
		}
	}
}
