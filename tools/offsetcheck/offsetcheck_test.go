package offsetcheck_test

import (
	"testing"

	"golang.org/x/tools/go/analysis/analysistest"

	"github.com/kushm/kushm/tools/offsetcheck"
)

// TestPlanted: the analyzer fails on every literal offset planted in a
// fixture package that handles region bytes (each "want" line), and on
// nothing else: named ABI offsets, strides, delimiters, non-byte slices,
// allowlisted foreign formats, internal/abi itself and packages that do
// not import it pass.
func TestPlanted(t *testing.T) {
	analysistest.Run(t, analysistest.TestData(), offsetcheck.Analyzer,
		"github.com/kushm/kushm/planted", "noabi", "github.com/kushm/kushm/internal/abi")
}
