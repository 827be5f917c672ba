package kushm

// The house's rules, checked on the source tree: every package stands on a
// floor and imports only packages of lower floors (docs/architecture.md
// draws them), so no import runs upward and no producer imports a reader
// or a reader a producer (they share a floor). Test files may import
// anything: an end-to-end test of a producer reads its region through the
// client.

import (
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/kushm/kushm"

// floors places every package of the module, by path prefix (the longest
// prefix wins). A package that matches no prefix fails the test: place it.
var floors = []struct {
	prefix string
	floor  int
}{
	// ground: the ABI, the one package of raw system calls
	{"internal/abi", 0},
	{"internal/sys", 0},
	// the one sentinel family and the reasons
	{"internal/errs", 1},
	// ground helpers (arithmetic, perf and sysfs plumbing, the module loader)
	{"internal/", 2},
	// region
	{"shm", 3},
	// structures
	{"atomicarr", 4},
	{"rcuhash", 4},
	{"ring", 4},
	// sources: what to measure
	{"pmu", 5},
	{"msr", 5},
	// producers | reader | runtimes: side by side, none imports another
	{"userside/provider", sideBySide},
	{"userside/client", sideBySide},
	{"userside/bpfrt", sideBySide},
	// the runtime's own floors: instruction set, then its engines
	{"userside/bpfrt/internal/isa", 4},
	{"userside/bpfrt/internal/engine", 5},
	{"userside/bpfrt/internal/verifier", 5},
	{"tracker", sideBySide},
	// views over the reader (the web view and its /api documents)
	{"userside/web", 7},
	// what renders and what builds
	{"cmd/", 8},
	{"tools/", 8},
}

// sideBySide is the floor of the producers, the reader and the runtimes.
const sideBySide = 6

// pending lists upward imports that are known and being removed, as
// "importer -> imported" (none today). The test fails when one of them is
// gone, so the list only shrinks.
var pending = map[string]bool{}

// floorOf returns the floor of package path (relative to the module) and
// the prefix that placed it.
func floorOf(pkg string) (int, string, bool) {
	best, floor := "", -1
	for _, f := range floors {
		p := strings.TrimSuffix(f.prefix, "/")
		if (pkg == p || strings.HasPrefix(pkg, p+"/")) && len(f.prefix) > len(best) {
			best, floor = f.prefix, f.floor
		}
	}
	return floor, best, floor >= 0
}

// violations returns one line per import of graph (package -> the module
// packages it imports, paths relative to the module) that breaks the
// floors. A package may import its own parent (a command under the
// package it drives) and its own subpackages (the reader and its generic
// decoder, userside/client/dump).
func violations(graph map[string][]string) []string {
	var out []string
	for pkg, imps := range graph {
		fp, _, ok := floorOf(pkg)
		if !ok {
			out = append(out, fmt.Sprintf("%s: on no floor (add it to floors in layers_test.go)", pkg))
			continue
		}
		for _, imp := range imps {
			if strings.HasPrefix(pkg, imp+"/") || strings.HasPrefix(imp, pkg+"/") {
				continue // a package and its own subpackages are one room
			}
			fi, _, ok := floorOf(imp)
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("%s -> %s: %s is on no floor", pkg, imp, imp))
			case fi == fp && fp == sideBySide:
				out = append(out, fmt.Sprintf("%s -> %s: producers, the reader and the runtimes never import one another", pkg, imp))
			case fi >= fp:
				out = append(out, fmt.Sprintf("%s -> %s: runs up (floor %d imports floor %d)", pkg, imp, fp, fi))
			}
		}
	}
	sort.Strings(out)
	return out
}

// sourceImports reads every non-test Go file of the tree (all build
// tags: a file for another OS counts too) and returns, per package
// directory, the imports whose paths have the module's prefix, and per
// file every import path.
func sourceImports(t *testing.T) (graph map[string][]string, files map[string][]string) {
	t.Helper()
	graph, files = map[string][]string{}, map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			n := d.Name()
			if path != "." && (strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") || n == "testdata" || n == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(filepath.Dir(path))
		seen := map[string]bool{}
		for _, imp := range graph[pkg] {
			seen[imp] = true
		}
		for _, is := range f.Imports {
			p, _ := strconv.Unquote(is.Path.Value)
			files[filepath.ToSlash(path)] = append(files[filepath.ToSlash(path)], p)
			if rel, ok := strings.CutPrefix(p, module+"/"); ok && !seen[rel] {
				seen[rel] = true
				graph[pkg] = append(graph[pkg], rel)
			}
		}
		if _, ok := graph[pkg]; !ok {
			graph[pkg] = nil
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	delete(graph, ".") // deps.go: the tools build tag's dependency list
	return graph, files
}

func TestLayers(t *testing.T) {
	graph, _ := sourceImports(t)
	if len(graph) < 15 {
		t.Fatalf("read only %d packages: run from the module root", len(graph))
	}
	var bad []string
	for _, v := range violations(graph) {
		key, _, _ := strings.Cut(v, ":")
		if pending[key] {
			delete(pending, key)
			continue
		}
		bad = append(bad, v)
	}
	for _, v := range bad {
		t.Error(v)
	}
	for k := range pending {
		t.Errorf("%s: no longer imported: strike it from pending in layers_test.go", k)
	}
}

// TestLayersCanFail plants the breaks the rules exist for and checks each
// is reported.
func TestLayersCanFail(t *testing.T) {
	graph := map[string][]string{
		"internal/sysstat":  {"internal/abi"},      // fine
		"internal/dumpish":  {"rcuhash"},           // runs up
		"userside/provider": {"userside/client"},   // producer imports the reader
		"userside/client":   {"shm", "atomicarr"},  // fine
		"tools/kgen/cmd/x":  {"tools/kgen", "pmu"}, // its parent: fine
		"shm":               {"atomicarr"},         // runs up
		"newtop/pkg":        nil,                   // on no floor
	}
	got := strings.Join(violations(graph), "\n")
	for _, want := range []string{
		"internal/dumpish -> rcuhash: runs up",
		"userside/provider -> userside/client: producers, the reader and the runtimes never import one another",
		"shm -> atomicarr: runs up",
		"newtop/pkg: on no floor",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("not reported: %q\ngot:\n%s", want, got)
		}
	}
	if n := len(violations(graph)); n != 4 {
		t.Errorf("%d violations, want 4:\n%s", n, got)
	}
	if _, err := os.Stat("go.mod"); err != nil {
		t.Fatal("not at the module root")
	}
}

// rawSyscallImport reports whether import path p gives raw system calls.
func rawSyscallImport(p string) bool {
	return p == "syscall" || p == "golang.org/x/sys/unix" || strings.HasPrefix(p, "golang.org/x/sys/unix/")
}

// confinementExempt are the non-test files outside internal/sys allowed
// raw system calls, each with the reason. Keep it short: a new entry needs
// a reason that internal/sys cannot serve.
var confinementExempt = map[string]string{
	// test support (the known work of the per-cgroup tests): a process
	// started with os/exec's syscall.SysProcAttr (clone3 into a cgroup),
	// pipes and CLOCK_THREAD_CPUTIME_ID; no library imports it.
	"tools/cgwork/cgwork.go": "test support",
}

// confinementViolations lists the files outside internal/sys that import
// syscall or golang.org/x/sys/unix (files: path -> import paths).
func confinementViolations(files map[string][]string) []string {
	var out []string
	for f, imps := range files {
		if strings.HasPrefix(f, "internal/sys/") || !strings.Contains(f, "/") || confinementExempt[f] != "" {
			continue // the one place; the module root holds only deps.go (tools tag)
		}
		for _, p := range imps {
			if rawSyscallImport(p) {
				out = append(out, fmt.Sprintf("%s imports %s: raw system calls go through internal/sys", f, p))
			}
		}
	}
	sort.Strings(out)
	return out
}

// TestSyscallConfinement: x/sys/unix and syscall are imported by
// internal/sys (and its perf subpackage) alone, as cilium/ebpf confines
// them to its internal/unix; test files may use them.
func TestSyscallConfinement(t *testing.T) {
	_, files := sourceImports(t)
	for _, v := range confinementViolations(files) {
		t.Error(v)
	}
	planted := map[string][]string{
		"internal/sys/sys.go":         {"golang.org/x/sys/unix"},
		"internal/sys/perfsys/p.go":   {"golang.org/x/sys/unix"},
		"userside/client/client.go":   {"fmt", "syscall"},
		"userside/bpfrt/sys_linux.go": {"golang.org/x/sys/unix"},
	}
	if got := confinementViolations(planted); len(got) != 2 ||
		!strings.HasPrefix(got[0], "userside/bpfrt/sys_linux.go imports golang.org/x/sys/unix") ||
		!strings.HasPrefix(got[1], "userside/client/client.go imports syscall") {
		t.Errorf("planted imports reported as %q", got)
	}
}
