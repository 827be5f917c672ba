package bpfrt

import (
	"errors"
	"testing"
)

func fuzzMaps() []Map {
	rb, _ := NewRingBufMap(4096)
	return []Map{NewArrayMap(8, 4), NewHashMap(4, 8, 8), rb}
}

func fuzzSeeds(f *testing.F) [][]byte {
	seeds := [][]byte{
		filterProgram(1, true), filterProgram(10, false),
		assemble(mov0, exit),
		assemble(asmInsn{op: 0x18, dst: 1, src: 1}, asmInsn{}, movImm(2, 0), asmInsn{op: clsSTX | modeMEM | szW, dst: 10, src: 2, off: -4},
			asmInsn{op: clsALU64 | aluMOV | srcX, dst: 2, src: 10}, asmInsn{op: clsALU64 | aluADD, dst: 2, imm: -4},
			asmInsn{op: clsJMP | jmpCALL, imm: HelperMapLookupElem}, asmInsn{op: clsJMP | jmpJEQ, dst: 0, off: 1},
			asmInsn{op: clsLDX | modeMEM | szDW, dst: 0, src: 0}, exit),
		assemble(movImm(0, 3), asmInsn{op: clsALU64 | aluSUB, dst: 0, imm: 1}, asmInsn{op: clsJMP | jmpJNE, dst: 0, off: -2}, exit),
	}
	return seeds
}

// FuzzLoad feeds arbitrary bytes to the loader and runs what it accepts:
// only clean refusals or clean runs, never a panic or an internal error.
func FuzzLoad(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, code []byte) {
		p, err := LoadRaw(code, fuzzMaps(), &Options{Budget: 100000})
		if err != nil {
			if !errors.Is(err, ErrInvalidProgram) {
				t.Fatalf("refusal without ErrInvalidProgram: %v", err)
			}
			return
		}
		ctx := make([]byte, 64)
		if _, err := p.NewVM().Run(ctx); errors.Is(err, ErrInternal) {
			t.Fatalf("internal error: %v", err)
		}
	})
}

// FuzzCheckAndRun mutates valid programs and their context.
func FuzzCheckAndRun(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"), uint16(0), uint8(0))
	}
	f.Fuzz(func(t *testing.T, code, ctx []byte, at uint16, flip uint8) {
		if len(code) > 0 {
			c := append([]byte(nil), code...)
			c[int(at)%len(c)] ^= flip
			code = c
		}
		p, err := LoadRaw(code, fuzzMaps(), &Options{Budget: 100000})
		if err != nil {
			return
		}
		vm := p.NewVM()
		for i := 0; i < 2; i++ {
			if _, err := vm.Run(ctx); errors.Is(err, ErrInternal) {
				t.Fatalf("internal error: %v", err)
			}
		}
	})
}
