package amd64

import "encoding/binary"

// x86-64 general registers, by their encoding number.
const (
	RAX = iota
	RCX
	RDX
	RBX
	RSP
	RBP
	RSI
	RDI
	R8
	R9
	R10
	R11
	R12
	R13
	R14
	R15
)

// Condition codes (the low nibble of Jcc).
const (
	ccB  = 0x2 // unsigned <
	ccAE = 0x3 // unsigned >=
	ccE  = 0x4
	ccNE = 0x5
	ccBE = 0x6 // unsigned <=
	ccA  = 0x7 // unsigned >
	ccL  = 0xc // signed <
	ccGE = 0xd
	ccLE = 0xe
	ccG  = 0xf
)

// operand is the r/m operand of an instruction: a register, or memory at
// [base+disp32], or [rip+disp32] to a label.
type operand struct {
	mem   bool
	rip   bool
	reg   int // register, or the base register
	disp  int32
	label int // rip: the label
}

func reg(r int) operand                { return operand{reg: r} }
func mem(base int, disp int32) operand { return operand{mem: true, reg: base, disp: disp} }

type fixup struct {
	pos   int // where the rel32 (or rel8) is
	label int
	jump  int  // ordinal of the jmp/jcc (-1: a call or rip operand)
	short bool // rel8
}

// asm encodes x86-64 instructions into a byte buffer. Jumps and rip-relative
// references go to labels, patched by finish. A jmp or jcc is rel32 unless
// near says otherwise: the compiler assembles twice, and the second pass
// makes rel8 every jump whose rel32 displacement in the first pass fitted
// in 8 bits (the second pass only shortens code, so a displacement never
// grows; finish checks it).
type asm struct {
	b      []byte
	labels []int // label -> offset, -1 until bound
	fixups []fixup
	near   []bool // by jump ordinal: emit rel8
	jumps  int    // jumps emitted so far
	r12    bool   // some instruction named R12 (the Context) since reset
}

func (a *asm) newLabel() int {
	a.labels = append(a.labels, -1)
	return len(a.labels) - 1
}

func (a *asm) bind(l int) { a.labels[l] = len(a.b) }

func (a *asm) byte1(v ...byte) { a.b = append(a.b, v...) }

func (a *asm) imm32(v int32) { a.b = binary.LittleEndian.AppendUint32(a.b, uint32(v)) }

func (a *asm) imm16(v int16) { a.b = binary.LittleEndian.AppendUint16(a.b, uint16(v)) }

// inst emits [66] [REX] opcode modrm [sib] [disp32] for reg (the ModRM reg
// field: a register or an opcode extension) and the r/m operand o.
// force emits a REX prefix even when no bit is set (byte registers
// SPL/BPL/SIL/DIL).
func (a *asm) inst(p66, w, force bool, opc []byte, r int, o operand) {
	if r == R12 || (!o.rip && o.reg == R12) {
		a.r12 = true
	}
	if p66 {
		a.byte1(0x66)
	}
	rex := byte(0x40)
	if w {
		rex |= 8
	}
	if r&8 != 0 {
		rex |= 4
	}
	if !o.rip && o.reg&8 != 0 {
		rex |= 1
	}
	if rex != 0x40 || force {
		a.byte1(rex)
	}
	a.byte1(opc...)
	a.modrm(r, o)
}

// modrm emits the ModRM byte, and the SIB byte and displacement o needs,
// for reg (a register or an opcode extension) and the r/m operand o.
func (a *asm) modrm(r int, o operand) {
	switch {
	case !o.mem:
		a.byte1(0xc0 | byte(r&7)<<3 | byte(o.reg&7))
	case o.rip:
		a.byte1(byte(r&7)<<3 | 5)
		a.fixups = append(a.fixups, fixup{pos: len(a.b), label: o.label, jump: -1})
		a.imm32(0)
	case o.disp == int32(int8(o.disp)):
		a.byte1(0x40 | byte(r&7)<<3 | byte(o.reg&7))
		if o.reg&7 == RSP {
			a.byte1(0x24) // SIB: base only
		}
		a.byte1(byte(int8(o.disp)))
	default:
		a.byte1(0x80 | byte(r&7)<<3 | byte(o.reg&7))
		if o.reg&7 == RSP {
			a.byte1(0x24) // SIB: base only
		}
		a.imm32(o.disp)
	}
}

// ALU operations with their r/m,r opcode and their 0x81 /n extension.
type aluOp struct {
	rm  byte // op r/m, r
	ext int  // 0x81 /ext imm32
}

var (
	aluAdd = aluOp{0x01, 0}
	aluOr  = aluOp{0x09, 1}
	aluAnd = aluOp{0x21, 4}
	aluSub = aluOp{0x29, 5}
	aluXor = aluOp{0x31, 6}
	aluCmp = aluOp{0x39, 7}
)

// aluRR: op dst, src (64 or 32 bit).
func (a *asm) aluRR(op aluOp, w bool, dst, src int) {
	a.inst(false, w, false, []byte{op.rm}, src, reg(dst))
}

// aluRI: op o, imm (sign-extended to 64 bits when w; imm8 form when it
// fits).
func (a *asm) aluRI(op aluOp, w bool, o operand, imm int32) {
	if imm == int32(int8(imm)) {
		a.inst(false, w, false, []byte{0x83}, op.ext, o)
		a.byte1(byte(int8(imm)))
		return
	}
	a.inst(false, w, false, []byte{0x81}, op.ext, o)
	a.imm32(imm)
}

// movRR: mov dst, src (32-bit form zero-extends).
func (a *asm) movRR(w bool, dst, src int) { a.inst(false, w, false, []byte{0x89}, src, reg(dst)) }

// movImm loads a 64-bit constant with the shortest of mov r32, mov r/m64
// sign-extended and movabs.
func (a *asm) movImm(dst int, v uint64) {
	switch {
	case v == 0:
		a.aluRR(aluXor, false, dst, dst)
	case v <= 0xffffffff:
		a.movImm32(dst, uint32(v))
	case int64(v) == int64(int32(v)):
		a.inst(false, true, false, []byte{0xc7}, 0, reg(dst))
		a.imm32(int32(v))
	default:
		a.byte1(0x48|byte(dst>>3), 0xb8|byte(dst&7))
		a.b = binary.LittleEndian.AppendUint64(a.b, v)
	}
}

// movImm32: mov r32, imm32 (zero-extends).
func (a *asm) movImm32(dst int, v uint32) {
	if dst&8 != 0 {
		a.byte1(0x41)
	}
	a.byte1(0xb8 | byte(dst&7))
	a.imm32(int32(v))
}

// load: mov dst, size bytes at o, zero- or sign-extended (size 1, 2, 4, 8).
func (a *asm) load(dst int, o operand, size int, signed bool) {
	switch {
	case size == 1 && signed:
		a.inst(false, true, false, []byte{0x0f, 0xbe}, dst, o)
	case size == 1:
		a.inst(false, false, false, []byte{0x0f, 0xb6}, dst, o)
	case size == 2 && signed:
		a.inst(false, true, false, []byte{0x0f, 0xbf}, dst, o)
	case size == 2:
		a.inst(false, false, false, []byte{0x0f, 0xb7}, dst, o)
	case size == 4 && signed:
		a.inst(false, true, false, []byte{0x63}, dst, o)
	case size == 4:
		a.inst(false, false, false, []byte{0x8b}, dst, o)
	default:
		a.inst(false, true, false, []byte{0x8b}, dst, o)
	}
}

// store: mov size bytes of src to o.
func (a *asm) store(o operand, src int, size int) {
	switch size {
	case 1:
		a.inst(false, false, true, []byte{0x88}, src, o)
	case 2:
		a.inst(true, false, false, []byte{0x89}, src, o)
	case 4:
		a.inst(false, false, false, []byte{0x89}, src, o)
	default:
		a.inst(false, true, false, []byte{0x89}, src, o)
	}
}

// storeImm: mov size bytes of v to o (8: v sign-extended from 32 bits).
func (a *asm) storeImm(o operand, v int32, size int) {
	switch size {
	case 1:
		a.inst(false, false, false, []byte{0xc6}, 0, o)
		a.byte1(byte(v))
	case 2:
		a.inst(true, false, false, []byte{0xc7}, 0, o)
		a.imm16(int16(v))
	case 4:
		a.inst(false, false, false, []byte{0xc7}, 0, o)
		a.imm32(v)
	default:
		a.inst(false, true, false, []byte{0xc7}, 0, o)
		a.imm32(v)
	}
}

// lea: dst = address of o.
func (a *asm) lea(dst int, o operand) { a.inst(false, true, false, []byte{0x8d}, dst, o) }

// leaLabel: dst = address of label l.
func (a *asm) leaLabel(dst, l int) { a.lea(dst, ripLabel(l)) }

// imulRR: dst *= src.
func (a *asm) imulRR(w bool, dst, src int) {
	a.inst(false, w, false, []byte{0x0f, 0xaf}, dst, reg(src))
}

// imulRI: dst = dst * imm32.
func (a *asm) imulRI(w bool, dst int, imm int32) {
	a.inst(false, w, false, []byte{0x69}, dst, reg(dst))
	a.imm32(imm)
}

// Shift extensions of 0xc1 / 0xd3.
const (
	shl = 4
	shr = 5
	sar = 7
)

func (a *asm) shiftImm(ext int, w bool, dst int, n uint8) {
	a.inst(false, w, false, []byte{0xc1}, ext, reg(dst))
	a.byte1(n)
}

func (a *asm) shiftCL(ext int, w bool, dst int) { a.inst(false, w, false, []byte{0xd3}, ext, reg(dst)) }

// unary 0xf7 group: 2 not, 3 neg, 6 div, 7 idiv.
func (a *asm) f7(ext int, w bool, o operand) { a.inst(false, w, false, []byte{0xf7}, ext, o) }

// testRI: test o, imm32.
func (a *asm) testRI(w bool, o operand, imm int32) {
	a.inst(false, w, false, []byte{0xf7}, 0, o)
	a.imm32(imm)
}

// testRR: test dst, src.
func (a *asm) testRR(w bool, dst, src int) { a.inst(false, w, false, []byte{0x85}, src, reg(dst)) }

// cqo (w) or cdq: sign-extend rax into rdx.
func (a *asm) cqo(w bool) {
	if w {
		a.byte1(0x48)
	}
	a.byte1(0x99)
}

// movsx: dst = sign extension of the low bits bits of src (to 64 bits when w).
func (a *asm) movsx(w bool, dst, src, bits int) {
	switch bits {
	case 8:
		a.inst(false, w, true, []byte{0x0f, 0xbe}, dst, reg(src))
	case 16:
		a.inst(false, w, false, []byte{0x0f, 0xbf}, dst, reg(src))
	default:
		a.inst(false, true, false, []byte{0x63}, dst, reg(src))
	}
}

// movzx16: dst = low 16 bits of src, zero-extended.
func (a *asm) movzx16(dst, src int) { a.inst(false, false, false, []byte{0x0f, 0xb7}, dst, reg(src)) }

// bswap: reverse the bytes of a 32- or 64-bit register.
func (a *asm) bswap(w bool, r int) {
	rex := byte(0x40)
	if w {
		rex |= 8
	}
	if r&8 != 0 {
		rex |= 1
	}
	if rex != 0x40 {
		a.byte1(rex)
	}
	a.byte1(0x0f, 0xc8|byte(r&7))
}

// rol16by8: rol r16, 8 (swap the two low bytes).
func (a *asm) rol16by8(r int) {
	a.inst(true, false, false, []byte{0xc1}, 0, reg(r))
	a.byte1(8)
}

// short reports whether the next jump is rel8, and counts it.
func (a *asm) short() (int, bool) {
	j := a.jumps
	a.jumps++
	return j, j < len(a.near) && a.near[j]
}

// jcc to label l (rel32, or rel8 when near says so).
func (a *asm) jcc(cc byte, l int) {
	j, s := a.short()
	if s {
		a.byte1(0x70 | cc)
		a.fixups = append(a.fixups, fixup{pos: len(a.b), label: l, jump: j, short: true})
		a.byte1(0)
		return
	}
	a.byte1(0x0f, 0x80|cc)
	a.fixups = append(a.fixups, fixup{pos: len(a.b), label: l, jump: j})
	a.imm32(0)
}

// jmp to label l (rel32, or rel8 when near says so).
func (a *asm) jmp(l int) {
	j, s := a.short()
	if s {
		a.byte1(0xeb)
		a.fixups = append(a.fixups, fixup{pos: len(a.b), label: l, jump: j, short: true})
		a.byte1(0)
		return
	}
	a.byte1(0xe9)
	a.fixups = append(a.fixups, fixup{pos: len(a.b), label: l, jump: j})
	a.imm32(0)
}

// call label l (rel32).
func (a *asm) call(l int) {
	a.byte1(0xe8)
	a.fixups = append(a.fixups, fixup{pos: len(a.b), label: l, jump: -1})
	a.imm32(0)
}

// nearJumps: after finish, by jump ordinal, whether the jump's
// displacement fits in 8 bits (the near table of the next pass).
func (a *asm) nearJumps() []bool {
	near := make([]bool, a.jumps)
	for _, f := range a.fixups {
		if f.jump < 0 {
			continue
		}
		end := f.pos + 4
		if f.short {
			end = f.pos + 1
		}
		d := a.labels[f.label] - end
		near[f.jump] = d >= -128 && d <= 127
	}
	return near
}

// jmpMem: jmp qword [o].
func (a *asm) jmpMem(o operand) { a.inst(false, false, false, []byte{0xff}, 4, o) }

func (a *asm) ret() { a.byte1(0xc3) }

// pop r.
func (a *asm) pop(r int) {
	if r&8 != 0 {
		a.byte1(0x41)
	}
	a.byte1(0x58 | byte(r&7))
}

// push r.
func (a *asm) push(r int) {
	if r&8 != 0 {
		a.byte1(0x41)
	}
	a.byte1(0x50 | byte(r&7))
}

// lockXadd: lock xadd [o], r.
func (a *asm) lockXadd(w bool, o operand, r int) {
	a.byte1(0xf0)
	a.inst(false, w, false, []byte{0x0f, 0xc1}, r, o)
}

// xchg: xchg [o], r (locked by the processor).
func (a *asm) xchg(w bool, o operand, r int) { a.inst(false, w, false, []byte{0x87}, r, o) }

// lockCmpxchg: lock cmpxchg [o], r (compares with rax).
func (a *asm) lockCmpxchg(w bool, o operand, r int) {
	a.byte1(0xf0)
	a.inst(false, w, false, []byte{0x0f, 0xb1}, r, o)
}

// lockALU: lock op [o], r (add/or/and/xor).
func (a *asm) lockALU(op aluOp, w bool, o operand, r int) {
	a.byte1(0xf0)
	a.inst(false, w, false, []byte{op.rm}, r, o)
}

// finish patches every rel32 and rel8 and returns the code.
func (a *asm) finish() []byte {
	for _, f := range a.fixups {
		t := a.labels[f.label]
		if t < 0 {
			panic("amd64: unbound label")
		}
		if f.short {
			d := t - (f.pos + 1)
			if d < -128 || d > 127 {
				panic("amd64: rel8 jump out of range")
			}
			a.b[f.pos] = byte(int8(d))
			continue
		}
		binary.LittleEndian.PutUint32(a.b[f.pos:], uint32(int32(t-(f.pos+4))))
	}
	return a.b
}

// cmpByteImm: cmp byte [o], v.
func (a *asm) cmpByteImm(o operand, v byte) {
	a.inst(false, false, false, []byte{0x80}, 7, o)
	a.byte1(v)
}

// VEX encodings (AVX2), for the predicate groups: always the three-byte
// form (C4), which every VEX instruction accepts.
const (
	vex66 = 1 // pp: the 66 prefix
	vexF3 = 2 // pp: the F3 prefix

	vex0F   = 1 // m-mmmm: the 0F map
	vex0F38 = 2 // m-mmmm: the 0F 38 map
)

// vex emits a VEX-encoded instruction: pp and the opcode map mm, L =
// 256 bits when l, the opcode, reg in ModRM.reg, v the second source
// (vvvv; 0 when unused) and the r/m operand o.
func (a *asm) vex(pp, mm byte, l bool, opc byte, r, v int, o operand) {
	if r == R12 || (o.mem && !o.rip && o.reg == R12) {
		a.r12 = true
	}
	b1 := mm
	if r&8 == 0 {
		b1 |= 0x80 // R, inverted
	}
	b1 |= 0x40 // X, inverted: no index register
	if o.rip || o.reg&8 == 0 {
		b1 |= 0x20 // B, inverted
	}
	b2 := byte(^v&15)<<3 | pp
	if l {
		b2 |= 4
	}
	a.byte1(0xc4, b1, b2, opc)
	a.modrm(r, o)
}

// vmovdqu: ymm x = 32 bytes at o.
func (a *asm) vmovdqu(x int, o operand) { a.vex(vexF3, vex0F, true, 0x6f, x, 0, o) }

// vpxor: ymm x = ymm v ^ 32 bytes at o.
func (a *asm) vpxor(x, v int, o operand) { a.vex(vex66, vex0F, true, 0xef, x, v, o) }

// vpcmpgtq: ymm x = lanes where ymm v > o (signed 64 bits), all ones.
func (a *asm) vpcmpgtq(x, v int, o operand) { a.vex(vex66, vex0F38, true, 0x37, x, v, o) }

// vpcmpeqq: ymm x = lanes where ymm v == o, all ones.
func (a *asm) vpcmpeqq(x, v int, o operand) { a.vex(vex66, vex0F38, true, 0x29, x, v, o) }

// vmovmskpd: r32 = the sign bits of the four 64-bit lanes of ymm x.
func (a *asm) vmovmskpd(r, x int) { a.vex(vex66, vex0F, true, 0x50, r, 0, reg(x)) }

// vzeroupper clears the upper halves of the ymm registers (before
// returning to Go's SSE code).
func (a *asm) vzeroupper() { a.byte1(0xc5, 0xf8, 0x77) }

// ripLabel is the operand [rip+label].
func ripLabel(l int) operand { return operand{mem: true, rip: true, label: l} }

// align pads with int3 to a multiple of n bytes (data after the code).
func (a *asm) align(n int) {
	for len(a.b)%n != 0 {
		a.byte1(0xcc)
	}
}
