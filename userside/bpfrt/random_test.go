package bpfrt

import (
	"errors"
	"math/rand/v2"
	"os"
	"testing"
)

// randomProgram builds a program from valid opcodes with random registers,
// offsets and immediates: most pass the syntax checks, so the data-flow
// analysis and the interpreter's checks are what stands between them and
// the process.
func randomProgram(rng *rand.Rand) []byte {
	n := 2 + rng.IntN(30)
	// a prologue initialises every register, some as pointers.
	var is []asmInsn
	for r := uint8(0); r <= 9; r++ {
		switch {
		case r == 1 || r == 2:
		case rng.IntN(3) == 0:
			is = append(is, asmInsn{op: clsALU64 | aluMOV | srcX, dst: r, src: []uint8{1, 10}[rng.IntN(2)]})
			is = append(is, asmInsn{op: clsALU64 | aluADD, dst: r, imm: int32(rng.IntN(80) - 60)})
		default:
			is = append(is, movImm(r, int32(rng.IntN(100))))
		}
	}
	base := len(is)
	reg := func() uint8 { return uint8(rng.IntN(11)) }
	wreg := func() uint8 { return uint8(rng.IntN(10)) }
	off := func() int16 {
		switch rng.IntN(4) {
		case 0:
			return int16(-8 * (1 + rng.IntN(64)))
		case 1:
			return int16(rng.IntN(72))
		case 2:
			return int16(rng.IntN(65536) - 32768)
		}
		return int16(-rng.IntN(16))
	}
	imm := func() int32 {
		switch rng.IntN(3) {
		case 0:
			return int32(rng.IntN(64))
		case 1:
			return int32(rng.Uint32())
		}
		return int32(rng.IntN(17) - 8)
	}
	aluCodes := []uint8{aluADD, aluSUB, aluMUL, aluDIV, aluOR, aluAND, aluLSH, aluRSH, aluNEG, aluMOD, aluXOR, aluMOV, aluARSH}
	jmpCodes := []uint8{jmpJEQ, jmpJGT, jmpJGE, jmpJSET, jmpJNE, jmpJSGT, jmpJSGE, jmpJLT, jmpJLE, jmpJSLT, jmpJSLE}
	sizes := []uint8{szB, szH, szW, szDW}
	for i := 0; i < n; i++ {
		jo := func() int16 { return int16(rng.IntN(n+2) - i - 1) }
		_ = base
		switch rng.IntN(12) {
		case 0, 1, 2:
			cls := []uint8{clsALU, clsALU64}[rng.IntN(2)]
			code := aluCodes[rng.IntN(len(aluCodes))]
			if rng.IntN(2) == 0 && code != aluNEG {
				is = append(is, asmInsn{op: cls | code | srcX, dst: wreg(), src: reg()})
			} else {
				v := imm()
				if code == aluLSH || code == aluRSH || code == aluARSH {
					v &= 31
				}
				is = append(is, asmInsn{op: cls | code, dst: wreg(), imm: v})
			}
		case 3:
			is = append(is, asmInsn{op: clsALU64 | aluMOV | srcX, dst: wreg(), src: []uint8{1, 10}[rng.IntN(2)]})
		case 4:
			is = append(is, asmInsn{op: clsALU64 | aluADD, dst: wreg(), imm: int32(off())})
		case 5, 6:
			sz := sizes[rng.IntN(4)]
			is = append(is, asmInsn{op: clsLDX | modeMEM | sz, dst: wreg(), src: reg(), off: off()})
		case 7:
			sz := sizes[rng.IntN(4)]
			if rng.IntN(2) == 0 {
				is = append(is, asmInsn{op: clsST | modeMEM | sz, dst: reg(), off: off(), imm: imm()})
			} else {
				is = append(is, asmInsn{op: clsSTX | modeMEM | sz, dst: reg(), src: reg(), off: off()})
			}
		case 8:
			cls := []uint8{clsJMP, clsJMP32}[rng.IntN(2)]
			code := jmpCodes[rng.IntN(len(jmpCodes))]
			if rng.IntN(2) == 0 {
				is = append(is, asmInsn{op: cls | code | srcX, dst: reg(), src: reg(), off: jo()})
			} else {
				is = append(is, asmInsn{op: cls | code, dst: reg(), imm: imm(), off: jo()})
			}
		case 9:
			ops := []int32{atomicADD, atomicOR | atomicFETCH, atomicXCHG, atomicCMPXCHG, atomicXOR}
			is = append(is, asmInsn{op: clsSTX | modeATOMIC | []uint8{szW, szDW}[rng.IntN(2)], dst: reg(), src: wreg(), off: off(), imm: ops[rng.IntN(len(ops))]})
		case 10:
			switch rng.IntN(3) {
			case 0:
				is = append(is, asmInsn{op: clsJMP | jmpCALL, imm: []int32{1, 2, 3, 5, 6, 8, 16, 130, 131, 132, 133}[rng.IntN(11)]})
			case 1:
				is = append(is, asmInsn{op: clsJMP | jmpCALL, src: pseudoCall, imm: int32(rng.IntN(n+2) - i - 1)})
			default:
				is = append(is, asmInsn{op: 0x18, dst: wreg(), src: uint8(rng.IntN(2)), imm: int32(rng.IntN(3))}, asmInsn{imm: imm()})
			}
		default:
			is = append(is, movImm(wreg(), imm()))
		}
	}
	is = append(is, movImm(0, 0), exit)
	return assemble(is...)
}

func TestRandomPrograms(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	iters := 20000
	if os.Getenv("BPFRT_RANDOM_ITERS") != "" {
		iters = 1000000
	}
	if testing.Short() {
		iters = 2000
	}
	accepted, ran := 0, 0
	ctx := make([]byte, 64)
	for i := 0; i < iters; i++ {
		code := randomProgram(rng)
		p, err := LoadRaw(code, fuzzMaps(), &Options{Budget: 10000})
		if err != nil {
			if !errors.Is(err, ErrInvalidProgram) {
				t.Fatalf("refusal without ErrInvalidProgram: %v", err)
			}
			continue
		}
		accepted++
		vm := p.NewVM()
		for k := 0; k < 2; k++ {
			_, err := vm.Run(ctx)
			if errors.Is(err, ErrInternal) {
				t.Fatalf("program %x: internal error: %v", code, err)
			}
			if err == nil {
				ran++
			}
		}
	}
	t.Logf("%d programs, %d accepted, %d clean runs", iters, accepted, ran)
	if accepted == 0 {
		t.Fatal("no random program accepted: the generator is broken")
	}
}
