package bpfrt

import (
	"bufio"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// sharedDir finds ../shared next to the repository root (the directory
// holding go.mod), or skips the test.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("no go.mod above the package directory")
		}
		dir = parent
	}
	s := filepath.Join(dir, "..", "shared")
	if d := os.Getenv("KUSHM_SHARED"); d != "" {
		s = d // a worktree elsewhere
	}
	if _, err := os.Stat(filepath.Join(s, "conformance", "vectors.tsv")); err != nil {
		t.Skipf("shared test data absent (%v): clone the shared material next to the repository as ../shared", err)
	}
	return s
}

type vector struct {
	name     string
	code     []byte
	mem      []byte
	result   string
	errorMsg string
}

func readVectors(t testing.TB) []vector {
	f, err := os.Open(filepath.Join(sharedDir(t), "conformance", "vectors.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []vector
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Split(line, "\t")
		if len(fs) != 5 {
			t.Fatalf("bad vector line %q", line)
		}
		v := vector{name: fs[0], result: fs[3], errorMsg: fs[4]}
		if v.code, err = hex.DecodeString(fs[1]); err != nil {
			t.Fatalf("%s: %v", fs[0], err)
		}
		if fs[2] != "-" {
			if v.mem, err = hex.DecodeString(fs[2]); err != nil {
				t.Fatalf("%s: %v", fs[0], err)
			}
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// refusedByDesign are the vectors kushm refuses at load time, as the Linux
// verifier does (docs/userspace-ebpf.md, "Judgement calls"): shifts by an
// immediate outside 0..width-1, and callx.
func refusedByDesign(name string) bool {
	return strings.HasSuffix(name, "-imm-high") || strings.HasSuffix(name, "-imm-neg") || name == "callx"
}

func TestConformance(t *testing.T) {
	vs := readVectors(t)
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vs {
		t.Run(v.name, func(t *testing.T) {
			p, err := LoadRaw(v.code, nil, nil)
			if refusedByDesign(v.name) {
				var ve *VerifierError
				if !errors.As(err, &ve) || !errors.Is(err, ErrInvalidProgram) {
					t.Fatalf("want a load-time refusal, got %v", err)
				}
				return
			}
			if v.errorMsg != "-" {
				if err != nil {
					return
				}
				if _, err := p.NewVM().Run(v.mem); err == nil {
					t.Fatalf("want an error (%s), got none", v.errorMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			want, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(v.result), "0x"), 16, 64)
			if err != nil {
				t.Fatalf("bad result %q", v.result)
			}
			mem := append([]byte(nil), v.mem...)
			got, err := p.NewVM().Run(mem)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if got != want {
				t.Fatalf("r0 = %#x, want %#x", got, want)
			}
		})
	}
}

// TestConformanceDataFiles checks that vectors.tsv covers every .data file
// of the suite with the same expected result, so TestConformance runs the
// whole shared suite.
func TestConformanceDataFiles(t *testing.T) {
	dir := filepath.Join(sharedDir(t), "conformance", "bpf_conformance")
	files, err := filepath.Glob(filepath.Join(dir, "*.data"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no .data files in %s: %v", dir, err)
	}
	byName := map[string]vector{}
	for _, v := range readVectors(t) {
		byName[v.name] = v
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".data")
		v, ok := byName[name]
		if !ok {
			t.Errorf("%s: no vector", name)
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		section := ""
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "-- ") {
				section = strings.TrimPrefix(line, "-- ")
				continue
			}
			if section == "result" && line != "" {
				want, err1 := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(line), "0x"), 16, 64)
				got, err2 := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(v.result), "0x"), 16, 64)
				if err1 != nil || err2 != nil || want != got {
					t.Errorf("%s: .data result %s, vector %s", name, line, v.result)
				}
				section = ""
			}
			if section == "error" && line != "" && v.errorMsg == "-" {
				t.Errorf("%s: .data expects an error, the vector does not", name)
				section = ""
			}
		}
	}
	if len(files) != len(byName) {
		t.Errorf("%d .data files, %d vectors", len(files), len(byName))
	}
}
