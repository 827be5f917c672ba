package errs_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/kushm/kushm/internal/errs"
)

func TestRefine(t *testing.T) {
	busy := errs.Refine(errs.ErrBusy, "module in use")
	err := fmt.Errorf("unload kushm: %w", busy)
	if !errors.Is(err, busy) || !errors.Is(err, errs.ErrBusy) {
		t.Fatalf("%v does not match its refinement and the family member", err)
	}
	if errors.Is(err, errs.ErrPermission) {
		t.Fatal("matches another member")
	}
	if err.Error() != "unload kushm: module in use" {
		t.Fatalf("text %q", err)
	}
	// A refinement of a refinement matches all the way down.
	inner := errs.Refine(busy, "mapped through debugfs")
	if !errors.Is(inner, errs.ErrBusy) || !errors.Is(inner, busy) {
		t.Fatal("chain of refinements")
	}
	if errors.Is(errs.ErrBusy, busy) {
		t.Fatal("the family member matches its refinement")
	}
}
