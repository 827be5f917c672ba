package bpfrt

import (
	"encoding/hex"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

func spaced(b []byte) string {
	var parts []string
	for _, c := range b {
		parts = append(parts, hex.EncodeToString([]byte{c}))
	}
	return strings.Join(parts, " ")
}

// TestConformancePlugin runs every vector through the plugin protocol, on
// both engines: in its RFC 9669 shift mode the whole suite passes but callx.
func TestConformancePlugin(t *testing.T) {
	for _, e := range engines() {
		for _, v := range readVectors(t) {
			conformancePlugin(t, e, v)
		}
	}
}

func conformancePlugin(t *testing.T, e Engine, v vector) {
	{
		r0, err := ConformancePlugin(spaced(v.mem), strings.NewReader(spaced(v.code)+"\n"), e)
		if v.name == "callx" {
			if err == nil {
				t.Errorf("%s: %s: accepted", e, v.name)
			}
			return
		}
		if v.errorMsg != "-" {
			if err == nil {
				t.Errorf("%s: %s: want an error (%s)", e, v.name, v.errorMsg)
			}
			return
		}
		if err != nil {
			t.Errorf("%s: %s: %v", e, v.name, err)
			return
		}
		want, _ := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(v.result), "0x"), 16, 64)
		if r0 != want {
			t.Errorf("%s: %s: r0 %#x want %s", e, v.name, r0, v.result)
		}
	}
}

func TestSideBySide(t *testing.T) {
	col, err := LoadFile("testdata/filter.o", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := col.Pick("")
	if err != nil {
		t.Fatal(err)
	}
	rs := SideBySide(col, p, filterContext(), 100)
	if rs[0].Engine != "interp" || rs[0].R0 != 1 || rs[0].Error != "" {
		t.Fatalf("interp: %+v", rs[0])
	}
	k := 1
	if amd64Supported {
		if rs[1].Engine != "jit" || rs[1].R0 != 1 || rs[1].Error != "" {
			t.Fatalf("jit: %+v", rs[1])
		}
		k = 2
	}
	if rs[k].Engine != "kernel" || rs[k].Error == "" && rs[k].R0 != 1 {
		t.Fatalf("kernel: %+v", rs[k])
	}
}

func TestLoadFileRaw(t *testing.T) {
	path := t.TempDir() + "/filter.bin"
	if err := os.WriteFile(path, filterProgram(10, true), 0o644); err != nil {
		t.Fatal(err)
	}
	col, err := LoadFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := col.Pick("")
	if err != nil || p.Name != "prog" || p.Len() != 24 {
		t.Fatalf("%v %+v", err, p)
	}
	if _, err := col.Pick("nope"); err == nil {
		t.Fatal("unknown program picked")
	}
	rs := SideBySide(col, p, filterContext(), 10)
	if rs[0].R0 != 1 || rs[0].NsPerEvent <= 0 {
		t.Fatalf("interp %+v", rs[0])
	}
	if rs[1].Error == "" && rs[1].R0 != 1 {
		t.Fatalf("kernel %+v", rs[1])
	}
	t.Logf("kernel: %+v", rs[1])
	if err := os.WriteFile(path, []byte{1, 2, 3}, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(path, nil); !errors.Is(err, ErrInvalidProgram) {
		t.Fatalf("garbage: %v", err)
	}
}
