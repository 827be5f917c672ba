// Command kgen writes kushm_pmu.h, kushm_msr.h or kushm_columns.h (see
// package kgen). It is run by go generate in packages pmu, msr and abi.
package main

import (
	"flag"
	"log"
	"os"
	"path/filepath"

	"github.com/kushm/kushm/tools/kgen"
)

func main() {
	what := flag.String("what", "", "pmu, msr or columns")
	out := flag.String("o", "", "output file")
	flag.Parse()
	var b []byte
	switch *what {
	case "pmu":
		b = kgen.PMUHeader()
	case "msr":
		b = kgen.MSRHeader()
	case "columns":
		var err error
		if b, err = kgen.ColumnsHeader(); err != nil {
			log.Fatal(err)
		}
	default:
		log.Fatalf("kgen: -what must be pmu, msr or columns, not %q", *what)
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
