package client

import (
	"fmt"

	"github.com/kushm/kushm/ring"
)

// Trace returns the region's trace ring (an application's user
// tracepoints, written by userside/bpfrt): Head, Lost and Read give its
// records. The error wraps ring.ErrNoRing when the region has none. The
// ring is valid until Close.
func (c *Client) Trace() (*ring.Ring, error) {
	g, err := ring.Open(c.r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Path(), err)
	}
	return g, nil
}
