package bpfrt

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestPredicateGroups: filter chains whose runs of four predicates on
// adjacent fields the JIT compiles to one AVX2 compare (amd64 groupAt)
// give the interpreter's r0, error, context and stack, for every compare
// op with an immediate, immediates at the signed and unsigned edges,
// fields at, next to and far from them, fields in shuffled order, chains
// that a short context cuts, and a helper call before the chain (the
// code resumes from Go, which may clobber the vector registers). Each
// program also runs with the groups off; with them on (where the
// processor has AVX2) some program of each eligible op must have one.
func TestPredicateGroups(t *testing.T) {
	skipNoJIT(t)
	if testEngine == EngineJIT {
		t.Skip("runs both engines itself")
	}
	defer func(v bool) { jitAVX2 = v }(jitAVX2)
	hasAVX2 := jitAVX2
	rng := rand.New(rand.NewPCG(13, 4))
	codes := []uint8{jmpJEQ, jmpJGT, jmpJGE, jmpJSET, jmpJNE, jmpJSGT, jmpJSGE, jmpJLT, jmpJLE, jmpJSLT, jmpJSLE}
	imms := []int32{0, 1, -1, 7, 1000, 0x7fffffff, -0x80000000}
	iters := 24
	if testing.Short() {
		iters = 3
	}
	for _, code := range codes {
		grouped := false
		for it := 0; it < iters; it++ {
			n := []int{4, 5, 8, 9, 13}[rng.IntN(5)]
			base := rng.IntN(4)
			// fields base..base+n-1, shuffled within each run of four
			fields := make([]int, n)
			for i := range fields {
				fields[i] = base + i
			}
			for b := 0; b+4 <= n; b += 4 {
				rng.Shuffle(4, func(i, j int) { fields[b+i], fields[b+j] = fields[b+j], fields[b+i] })
			}
			imm := make([]int32, n)
			for i := range imm {
				imm[i] = imms[rng.IntN(len(imms))]
			}
			// a helper call before the chain, or after its first four
			// predicates (the code resumes from Go, whose exit cleared the
			// upper ymm halves: the sign-bit vector must be loaded again)
			helper := rng.IntN(3) // 0: none
			if helper == 2 && n < 8 {
				helper = 1
			}
			var is []asmInsn
			ctxReg := uint8(1)
			if helper > 0 {
				ctxReg = 6
				is = append(is, asmInsn{op: clsALU64 | aluMOV | srcX, dst: 6, src: 1})
			}
			call := asmInsn{op: clsJMP | jmpCALL, imm: HelperKtimeGetNs}
			if helper == 1 {
				is = append(is, call)
			}
			for i, f := range fields {
				if helper == 2 && i == 4 {
					// r2 = 0 first: r2 is dead after the fourth predicate
					// (what the compiler can see: it groups predicates
					// whose register is written before it is read)
					is = append(is, movImm(2, 0), call)
				}
				off := 2*(n-i-1) + 2 // the predicates after this one, r0 = 1; exit
				if helper == 2 && i < 4 {
					off += 2 // and r2 = 0, the call
				}
				is = append(is, asmInsn{op: clsLDX | modeMEM | szDW, dst: 2, src: ctxReg, off: int16(8 * f)},
					asmInsn{op: clsJMP | code, dst: 2, imm: imm[i], off: int16(off)})
			}
			is = append(is, movImm(0, 1), exit, mov0, exit)
			prog := assemble(is...)
			for _, avx2 := range []bool{true, false} {
				if avx2 && !hasAVX2 {
					continue
				}
				jitAVX2 = avx2
				p, err := LoadRaw(prog, nil, &Options{Engine: EngineJIT, Helpers: diffHelpers()})
				if err != nil {
					t.Fatalf("%x: %v", prog, err)
				}
				if avx2 && p.code.Groups > 0 {
					grouped = true
				}
				if !avx2 && p.code.Groups != 0 {
					t.Fatalf("%x: %d groups without AVX2", prog, p.code.Groups)
				}
				for k := 0; k < 6; k++ {
					size := 8 * (base + n + 4)
					if k == 5 {
						size = 8 * (base + n - 1 - rng.IntN(2)) // short: runs on the interpreter
					}
					ctx := make([]byte, size)
					for f := 0; f+8 <= size; f += 8 {
						// near the immediate of the field's predicate, or
						// across the sign bit from it, or at the edges
						v := rng.Uint64()
						for i, g := range fields {
							if g != f/8 {
								continue
							}
							near := uint64(int64(imm[i])) + uint64(rng.IntN(3)) - 1
							switch rng.IntN(5) {
							case 0, 1:
								v = near
							case 2:
								v = near ^ 1<<63
							case 3:
								v = []uint64{0, 1 << 63, 1<<63 - 1, ^uint64(0)}[rng.IntN(4)]
							}
						}
						binary.LittleEndian.PutUint64(ctx[f:], v)
					}
					if !differential(t, prog, ctx, 1000) {
						t.Fatalf("refused: %x", prog)
					}
				}
			}
		}
		if hasAVX2 && code != jmpJSET && !grouped {
			t.Errorf("op %#x: no program had a group", code)
		}
	}
}
