package provider

import (
	"testing"

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
