package client

import (
	"io"

	"github.com/kushm/kushm/userside/client/dump"
)

// Decode decodes every section of the region from its own schema, the
// per-CPU slots merged by each column's merge rule, hash tables listed up
// to maxEntries entries each: the generic reader behind `kushm dump -o
// json` and the web view's sections document (package dump).
func (c *Client) Decode(maxEntries int) *dump.Document { return dump.Decode(c.r, maxEntries) }

// Dump writes the decoded sections for people, as `kushm dump` prints
// them.
func (c *Client) Dump(w io.Writer, o dump.Options) error { return dump.Dump(c.r, w, o) }
