package bpfrt

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

func TestELFFilter(t *testing.T) {
	col, err := LoadELF("testdata/filter.o", nil)
	if err != nil {
		t.Fatal(err)
	}
	p := col.Programs["filter10"]
	if p == nil {
		t.Fatal("no filter10")
	}
	ctx := filterContext()
	if r, err := p.Run(ctx); err != nil || r != 1 {
		t.Fatalf("r0=%d err=%v", r, err)
	}
	binary.LittleEndian.PutUint64(ctx[8*3:], 1)
	if r, err := p.Run(ctx); err != nil || r != 0 {
		t.Fatalf("r0=%d err=%v", r, err)
	}
	if _, err := p.Run(ctx[:16]); err == nil {
		t.Fatal("short context accepted")
	}
}

func TestELFMaps(t *testing.T) {
	var out bytes.Buffer
	col, err := LoadELF("testdata/maps.o", &Options{TraceOutput: &out})
	if err != nil {
		t.Fatal(err)
	}
	p := col.Programs["count"]
	ctx := make([]byte, 8)
	binary.LittleEndian.PutUint32(ctx[0:], 7)
	binary.LittleEndian.PutUint32(ctx[4:], 10)
	for i := 0; i < 3; i++ {
		r, err := p.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := uint64(55 * 3 * (i + 1)); r != want {
			t.Fatalf("run %d: r0=%d want %d", i, r, want)
		}
	}
	key := []byte{7, 0, 0, 0}
	v := col.Maps["counts"].Lookup(key)
	if v == nil || binary.LittleEndian.Uint64(v) != 3 {
		t.Fatalf("counts[7] = %v, want 3", v)
	}
	if !strings.Contains(out.String(), "key 7 total 495") {
		t.Fatalf("trace output %q", out.String())
	}
}
