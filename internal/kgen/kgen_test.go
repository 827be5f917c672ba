package kgen

import (
	"bytes"
	"testing"
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
