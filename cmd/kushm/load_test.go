package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadCommandErrors(t *testing.T) {
	var out bytes.Buffer
	err := run([]string{"load", "--param", "novalue"}, &out)
	if err == nil || !strings.Contains(err.Error(), "want name=value") {
		t.Fatalf("load with a bad --param = %v", err)
	}
	missing := filepath.Join(t.TempDir(), "kushm.ko")
	if err := run([]string{"load", "--module", missing}, &out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("load of a missing module = %v", err)
	}
}
