package client

import (
	"github.com/kushm/kushm/shm"
	"io"

	"github.com/kushm/kushm/userside/client/dump"
)

// Decode decodes every section of the region from its own schema, the
// per-CPU slots merged by each column's merge rule, hash tables listed up
// to maxEntries entries each: the generic reader behind `kushm dump -o
// json` and the web view's sections document (package dump).
func (c *Client) Decode(maxEntries int) *dump.Document {
	d, err := guarded(func() (*dump.Document, error) { return dump.Decode(c.r, maxEntries), nil })
	if err != nil {
		return &dump.Document{Path: c.Path(), Sections: []dump.Section{{Error: err.Error()}}}
	}
	return d
}

// Dump writes the decoded sections for people, as `kushm dump` prints
// them.
func (c *Client) Dump(w io.Writer, o dump.Options) error {
	return shm.Guard(func() error { return dump.Dump(c.r, w, o) })
}
