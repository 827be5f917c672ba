package bpfrt

import (
	"encoding/binary"
	"fmt"
	"testing"
	"unsafe"
)

// filterProgram is the program of ../shared/bench/filter-bench.md, version
// 2: predicate i reads field i and compares it with i.
func filterProgram(n int, trueBias bool) []byte {
	var code []byte
	emit := func(op, regs uint8, off int16, imm int32) {
		var b [8]byte
		b[0], b[1] = op, regs
		binary.LittleEndian.PutUint16(b[2:], uint16(off))
		binary.LittleEndian.PutUint32(b[4:], uint32(imm))
		code = append(code, b[:]...)
	}
	// layout: 2n predicate slots, then r0=1; exit; fail: r0=0; exit
	fail := 2*n + 2
	for i := 0; i < n; i++ {
		emit(clsLDX|modeMEM|szDW, 2|1<<4, int16(8*i), 0) // r2 = *(u64 *)(r1 + 8i)
		pc := 2*i + 1
		if i == 0 && !trueBias {
			emit(clsJMP|jmpJGT, 2, int16(fail-pc-1), 0) // if r2 > 0 goto fail
		} else {
			emit(clsJMP|jmpJLT, 2, int16(fail-pc-1), int32(i)) // if r2 < i goto fail
		}
	}
	emit(clsALU64|aluMOV, 0, 0, 1)
	emit(clsJMP|jmpEXIT, 0, 0, 0)
	emit(clsALU64|aluMOV, 0, 0, 0)
	emit(clsJMP|jmpEXIT, 0, 0, 0)
	return code
}

// filterContext is version 2's context: 64 u64 fields, f[i] = 1000+i.
func filterContext() []byte {
	ctx := make([]byte, 512)
	for j := 0; j < 64; j++ {
		binary.LittleEndian.PutUint64(ctx[8*j:], uint64(1000+j))
	}
	return ctx
}

func TestFilterProgram(t *testing.T) {
	ctx := filterContext()
	for _, n := range []int{1, 10, 50} {
		for _, tb := range []bool{true, false} {
			p, err := LoadRaw(filterProgram(n, tb), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			vm := p.NewVM()
			got, err := vm.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := uint64(0)
			if tb {
				want = 1
			}
			if got != want {
				t.Fatalf("N=%d true=%v: r0=%d want %d", n, tb, got, want)
			}
			native := nativeFilters[fmt.Sprintf("%d/%v", n, tb)]
			if r := native((*filterEvent)(unsafe.Pointer(&ctx[0]))); r != want {
				t.Fatalf("native N=%d: %d", n, r)
			}
			if a := testing.AllocsPerRun(100, func() { vm.Run(ctx) }); a != 0 {
				t.Fatalf("%v allocations per run", a)
			}
		}
	}
}

// BenchmarkFilter is the filter benchmark: engine, N, bias.
func BenchmarkFilter(b *testing.B) {
	ctx := filterContext()
	ev := (*filterEvent)(unsafe.Pointer(&ctx[0]))
	for _, engine := range []string{"interp", "jit", "native"} {
		for _, n := range []int{1, 10, 50} {
			for _, bias := range []string{"true", "false"} {
				b.Run(fmt.Sprintf("%s/N=%d/%s", engine, n, bias), func(b *testing.B) {
					var sink uint64
					if engine == "native" {
						f := nativeFilters[fmt.Sprintf("%d/%s", n, bias)]
						for i := 0; i < b.N; i++ {
							sink += f(ev)
						}
					} else {
						e := EngineInterp
						if engine == "jit" {
							if !amd64Supported {
								b.Skip("no JIT on this platform")
							}
							e = EngineJIT
						}
						p, err := LoadRaw(filterProgram(n, bias == "true"), nil, &Options{Engine: e})
						if err != nil {
							b.Fatal(err)
						}
						vm := p.NewVM()
						b.ResetTimer()
						for i := 0; i < b.N; i++ {
							r, _ := vm.Run(ctx)
							sink += r
						}
					}
					benchSink = sink
				})
			}
		}
	}
}

var benchSink uint64
