//go:build amd64 && linux

package amd64

import "testing"

//go:noinline
func goNop(c *Context, r1, r2, r10 uint64) (uint64, uint64) { return 0, 0 }

var goNopVar = goNop

// BenchmarkGoFuncValue is the Go floor: a func value onto an empty Go
// function, the call every entry into generated code makes at least.
func BenchmarkGoFuncValue(b *testing.B) {
	f := goNopVar
	var c Context
	for i := 0; i < b.N; i++ {
		f(&c, 0, 0, 0)
	}
}
