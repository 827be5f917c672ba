package bpfrt

import (
	"flag"
	"fmt"
	"os"
	"testing"
)

// TestMain runs every test of the package once per engine: EngineAuto
// loads on the interpreter, then on the JIT (where there is one), so each
// interpreter test is a JIT test too.
func TestMain(m *testing.M) {
	code := 0
	for i, e := range engines() {
		testEngine = e
		if i > 0 {
			// benchmarks and fuzz targets name their engines: run them once
			flag.Set("test.bench", "")
			flag.Set("test.fuzz", "")
		}
		if c := m.Run(); c != 0 {
			fmt.Fprintf(os.Stderr, "FAIL on engine %s\n", e)
			code = c
		}
	}
	os.Exit(code)
}

// engines are the engines this platform has.
func engines() []Engine {
	if amd64Supported {
		return []Engine{EngineInterp, EngineJIT}
	}
	return []Engine{EngineInterp}
}
