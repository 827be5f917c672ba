package modload

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParams(t *testing.T) {
	p, err := ParseParams([]string{"interval_ms=50", "presets=PAPI_TOT_CYC,SW_PAGE_FAULTS", "msrs=a b"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := FormatParams(p), `interval_ms=50 msrs="a b" presets=PAPI_TOT_CYC,SW_PAGE_FAULTS`; got != want {
		t.Fatalf("FormatParams = %q, want %q", got, want)
	}
	for _, bad := range []string{"novalue", "=x", "a b=c"} {
		if _, err := ParseParams([]string{bad}); err == nil {
			t.Errorf("ParseParams(%q) accepted", bad)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	for _, c := range []struct {
		errno unix.Errno
		want  error
	}{
		{unix.EEXIST, ErrLoaded},
		{unix.EKEYREJECTED, ErrSignature},
		{unix.ENOKEY, ErrSignature},
		{unix.ENOEXEC, ErrVersionMagic},
		{unix.EINVAL, ErrBadParam},
	} {
		if err := loadError(c.errno); !errors.Is(err, c.want) || !errors.Is(err, c.errno) {
			t.Errorf("loadError(%v) = %v, want %v", c.errno, err, c.want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	err := Load(filepath.Join(t.TempDir(), "nope.ko"), nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load of a missing file = %v", err)
	}
}

func TestRootFixture(t *testing.T) {
	root := t.TempDir()
	r := Root(root)
	if r.Loaded() {
		t.Fatal("empty fixture reports loaded")
	}
	if _, err := r.Params(); !errors.Is(err, ErrNotLoaded) {
		t.Fatalf("Params = %v, want ErrNotLoaded", err)
	}
	dir := filepath.Join(root, "sys/module/kushm/parameters")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "sys/module/kushm/initstate"), []byte("live\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "interval_ms"), []byte("100\n"), 0o644)
	if !r.Loaded() {
		t.Fatal("fixture not loaded")
	}
	p, err := r.Params()
	if err != nil || p["interval_ms"] != "100" {
		t.Fatalf("Params = %v, %v", p, err)
	}
}
