//go:build amd64 && linux

package amd64

import (
	"testing"

	"github.com/kushm/kushm/userside/bpfrt/internal/isa"
)

// BenchmarkEnter is the bare entry cost: Go -> generated code (r0 = 1;
// exit, with the prologue and epilogue) -> back, the Context set up once.
func BenchmarkEnter(b *testing.B) {
	p, err := Compile([]isa.Insn{{Op: isa.OpMov64K, Imm: 1}, {Op: isa.OpExit}}, []isa.Func{{Start: 0, End: 2}}, Options{Regions: 2, StackBytes: 4096})
	if err != nil {
		b.Fatal(err)
	}
	code, err := Map(p)
	if err != nil {
		b.Fatal(err)
	}
	var c Context
	var r0, exit uint64
	for i := 0; i < b.N; i++ {
		r0, exit = code.Enter(&c, 0, 0)
	}
	if r0 != 1 || exit != ExitReturn {
		b.Fatalf("r0 %d exit %d", r0, exit)
	}
}

func nop()

// BenchmarkAsmCall is the floor: a call to an empty assembly function.
func BenchmarkAsmCall(b *testing.B) {
	for i := 0; i < b.N; i++ {
		nop()
	}
}

func benchText(b *testing.B, text []byte) {
	code, err := Map(&Program{Text: text})
	if err != nil {
		b.Fatal(err)
	}
	var c Context
	for i := 0; i < b.N; i++ {
		code.Enter(&c, 0, 0)
	}
}

// BenchmarkEnterRet: a call into mapped code that only returns.
func BenchmarkEnterRet(b *testing.B) { benchText(b, []byte{0xc3}) }

func nopAddr() uintptr

// BenchmarkFuncValue: a Go func value onto an assembly function in Go's
// text (an ABI wrapper in between): the indirect call's own cost.
func BenchmarkFuncValue(b *testing.B) {
	f := funcOf(nopAddr())
	var c Context
	for i := 0; i < b.N; i++ {
		f(&c, 0, 0)
	}
}
