package bpfrt

import (
	"encoding/binary"
	"fmt"
	"testing"
)

// TestFusedOps checks the fused "load + compare" ops against the plain
// ones: the same program with a jump target in the middle is not fused.
func TestFusedOps(t *testing.T) {
	codes := []uint8{jmpJEQ, jmpJGT, jmpJGE, jmpJSET, jmpJNE, jmpJSGT, jmpJSGE, jmpJLT, jmpJLE, jmpJSLT, jmpJSLE}
	vals := []uint64{0, 1, 2, 3, 4, ^uint64(0), ^uint64(1), 1 << 63, 1<<63 - 1}
	ks := []int32{0, 3, -2}
	for _, code := range codes {
		for _, k := range ks {
			for shape := 0; shape < 3; shape++ {
				var is []asmInsn
				switch shape {
				case 0: // ldx r2; jcc r2, K
					is = []asmInsn{{op: clsLDX | modeMEM | szDW, dst: 2, src: 1}, movImm(3, k), {op: clsJMP | code, dst: 2, imm: k, off: 2}}
					is[0], is[1] = is[1], is[0] // mov first so ldx+jcc are adjacent
				case 1: // ldx r2; mov r3, K; jcc r3, r2
					is = []asmInsn{{op: clsLDX | modeMEM | szDW, dst: 2, src: 1}, movImm(3, k), {op: clsJMP | code | srcX, dst: 3, src: 2, off: 2}}
				case 2: // ldx r2; mov r3, K; jcc r2, r3
					is = []asmInsn{{op: clsLDX | modeMEM | szDW, dst: 2, src: 1}, movImm(3, k), {op: clsJMP | code | srcX, dst: 2, src: 3, off: 2}}
				}
				prog := append(append([]asmInsn{}, is...),
					asmInsn{op: clsALU64 | aluMOV | srcX, dst: 0, src: 3}, exit, // not taken: r0 = r3
					asmInsn{op: clsALU64 | aluMOV | srcX, dst: 0, src: 2}, exit) // taken: r0 = r2
				fused, err := LoadRaw(assemble(prog...), nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				// the reference: a jump to the compare keeps it unfused.
				plain, err := LoadRaw(assemble(append(append([]asmInsn{}, prog[:2]...), append([]asmInsn{{op: clsJMP | jmpJA}}, prog[2:]...)...)...), nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				if op := fused.insns[1].Op; shape == 0 && (op < opFJeq || op > opFJsle) || shape > 0 && fused.insns[0].Op != opF3 {
					t.Fatalf("code %#x shape %d: not fused", code, shape)
				}
				for _, v := range vals {
					ctx := make([]byte, 8)
					binary.LittleEndian.PutUint64(ctx, v)
					a, err1 := fused.Run(ctx)
					b, err2 := plain.Run(ctx)
					if err1 != nil || err2 != nil || a != b {
						t.Errorf("%s", fmt.Sprintf("code %#x k %d shape %d v %#x: fused %#x (%v) plain %#x (%v)", code, k, shape, v, a, err1, b, err2))
					}
				}
			}
		}
	}
}
