package kgen

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kushm/kushm/internal/abi"
)

func TestCString(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:  `"plain"`,
		`a"b\c`:  `"a\"b\\c"`,
		"°C":     `"\302\260C"`,
		"tab\tx": `"tab\011x"`,
	} {
		if got := CString(in); got != want {
			t.Errorf("CString(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestDeterministic(t *testing.T) {
	if !bytes.Equal(PMUHeader(), PMUHeader()) || !bytes.Equal(MSRHeader(), MSRHeader()) {
		t.Fatal("header generation is not deterministic")
	}
	for _, h := range [][]byte{PMUHeader(), MSRHeader()} {
		for _, b := range h {
			if b >= 0x80 {
				t.Fatal("non-ASCII byte in a generated header")
			}
		}
	}
}

// The generated headers must compile as C (userspace view: linux/types.h).
func TestHeadersCompile(t *testing.T) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "h.c")
	os.WriteFile(src, []byte(`#include "kmod/include/generated/kushm_pmu.h"
#include "kmod/include/generated/kushm_msr.h"
int main(void)
{
	return kushm_msr_allowed(KUSHM_MSR_ADDR_TSC) - 1 +
	       (int)kushm_pmu_presets[KUSHM_SW_PAGE_FAULTS].ev[KUSHM_PMU_VENDOR_AMD].type - 1 +
	       (int)(sizeof(kushm_msr_catalogue) / sizeof(kushm_msr_catalogue[0])) - KUSHM_MSR_NUM;
}
`), 0o644)
	out, err := exec.Command(cc, "-Wall", "-Wextra", "-Werror", "-std=c11", "-I", "../..", "-o", filepath.Join(dir, "h"), src).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "linux/types.h") {
			t.Skipf("no kernel uapi headers: %s", out)
		}
		t.Fatalf("%v\n%s", err, out)
	}
	if err := exec.Command(filepath.Join(dir, "h")).Run(); err != nil {
		t.Fatalf("header tables disagree with the macros: %v", err)
	}
}

// The C column table, compiled and written out byte for byte, equals the
// schema entries the Go side builds from the same declarations.
func TestColumnsTableBytes(t *testing.T) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "c.c")
	os.WriteFile(src, []byte(`#include <stdio.h>
#include "kmod/include/generated/kushm_columns.h"
int main(void)
{
	return fwrite(kushm_columns, sizeof(kushm_columns), 1, stdout) != 1;
}
`), 0o644)
	bin := filepath.Join(dir, "c")
	out, err := exec.Command(cc, "-Wall", "-Wextra", "-Werror", "-std=c11", "-I", "../..", "-I", "../../kmod/include/generated", "-o", bin, src).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "linux/types.h") {
			t.Skipf("no kernel uapi headers: %s", out)
		}
		t.Fatalf("%v\n%s", err, out)
	}
	got, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for _, s := range abi.Sections {
		if s.DaemonOnly {
			continue
		}
		cols, err := s.Expand(Catalogues())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cols {
			e, err := c.Entry()
			if err != nil {
				t.Fatal(err)
			}
			b := make([]byte, abi.ColumnEntrySize)
			if err := abi.Encode(b, &e); err != nil {
				t.Fatal(err)
			}
			want = append(want, b...)
		}
	}
	if !bytes.Equal(got, want) {
		for i := 0; i < min(len(got), len(want)); i += abi.ColumnEntrySize {
			if !bytes.Equal(got[i:min(i+abi.ColumnEntrySize, len(got))], want[i:min(i+abi.ColumnEntrySize, len(want))]) {
				t.Fatalf("column %d differs:\nC  %q\nGo %q", i/abi.ColumnEntrySize, got[i:i+abi.ColumnEntrySize], want[i:i+abi.ColumnEntrySize])
			}
		}
		t.Fatalf("C table %d bytes, Go %d", len(got), len(want))
	}
}
