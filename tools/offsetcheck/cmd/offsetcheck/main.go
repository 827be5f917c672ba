// Command offsetcheck runs the offsetcheck analyzer (package
// tools/offsetcheck): `go run ./tools/offsetcheck/cmd/offsetcheck ./...`,
// which `make offset-check` (part of `make check`) does.
package main

import (
	"golang.org/x/tools/go/analysis/singlechecker"

	"github.com/kushm/kushm/tools/offsetcheck"
)

func main() { singlechecker.Main(offsetcheck.Analyzer) }
