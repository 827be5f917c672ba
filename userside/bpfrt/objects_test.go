package bpfrt

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestObjectsFresh rebuilds the committed BPF objects (testdata/Makefile's
// command) and checks they match: the objects are committed, so a source
// change without `make -C userside/bpfrt/testdata` fails here.
func TestObjectsFresh(t *testing.T) {
	clang, err := exec.LookPath("clang-14")
	if err != nil {
		t.Skip("clang-14 not installed (Debian package clang-14): cannot check the committed BPF objects")
	}
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	for _, name := range []string{"filter", "maps", "kushm"} {
		out := filepath.Join(tmp, name+".o")
		cmd := exec.Command(clang, "-O2", "-g", "-target", "bpf", "-fdebug-prefix-map="+dir+"=.", "-Wall", "-Werror", "-c", name+".c", "-o", out)
		cmd.Dir = dir
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, b)
		}
		fresh, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(filepath.Join(dir, name+".o"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fresh, committed) {
			t.Errorf("testdata/%s.o is stale: run make -C userside/bpfrt/testdata and commit", name)
		}
	}
}
