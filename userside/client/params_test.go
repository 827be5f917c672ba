package client

import (
	"testing"

	"github.com/kushm/kushm/internal/abi"
)

// Raw writes defaults as 0 (so later default changes apply) and keeps
// every value the user chose.
func TestSyscallParamsRaw(t *testing.T) {
	def := SyscallParams{Kx100: abi.DefaultKx100, Warmup: abi.DefaultWarmup, Mode: abi.ThModeSigma,
		Qppm: abi.DefaultQppm, FactorX1000: abi.DefaultFactorX1000, DecayShift: abi.DefaultDecayShift}
	if got := def.Raw(); got != (SyscallParams{}) {
		t.Errorf("defaults: Raw() = %+v, want all 0", got)
	}
	set := SyscallParams{Kx100: abi.DefaultKx100 + 1, Warmup: abi.DefaultWarmup + 1, Mode: abi.ThModeInterp,
		Qppm: abi.DefaultQppm - 1, FactorX1000: abi.DefaultFactorX1000 + 1, DecayShift: abi.DefaultDecayShift + 1}
	if got := set.Raw(); got != set {
		t.Errorf("chosen values: Raw() = %+v, want %+v", got, set)
	}
}
