// Command kgen writes kushm_pmu.h or kushm_msr.h (see package kgen). It is
// run by go generate in packages pmu and msr.
package main

import (
	"flag"
	"log"
	"os"
	"path/filepath"

	"github.com/kushm/kushm/tools/kgen"
)

func main() {
	what := flag.String("what", "", "pmu or msr")
	out := flag.String("o", "", "output file")
	flag.Parse()
	var b []byte
	switch *what {
	case "pmu":
		b = kgen.PMUHeader()
	case "msr":
		b = kgen.MSRHeader()
	default:
		log.Fatalf("kgen: -what must be pmu or msr, not %q", *what)
	}
	if *out == "" {
		log.Fatal("kgen: -o is required")
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		log.Fatal(err)
	}
	if old, err := os.ReadFile(*out); err == nil && string(old) == string(b) {
		return // unchanged: keep the mtime
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		log.Fatal(err)
	}
}
