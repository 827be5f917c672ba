package provider

import (
	"testing"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/tools/cgwork"
)

// touchPages maps n fresh anonymous pages and writes one byte to each:
// at least n page faults in this process.
func touchPages(t testing.TB, n int) {
	t.Helper()
	if err := cgwork.Fault(n); err != nil {
		t.Fatal(err)
	}
}

// openControl maps p's region with a writable control section, as a
// user with write access to the control file does, and returns the
// region (closed at the test's end) and the control section's bytes.
func openControl(t testing.TB, p *Provider) (*shm.Region, []byte) {
	t.Helper()
	c, err := shm.Open(p.Path(), shm.Options{WritableControl: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := c.Section(abi.SecNameControl)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Bytes(s)
	if err != nil {
		t.Fatal(err)
	}
	return c, b
}
