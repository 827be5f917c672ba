package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/kushm/kushm/userside/client"
)

// Who the commands trust to produce a discovered region: root, the user
// running kushm, and the uids of --producer-uid (default from
// $KUSHM_PRODUCER_UID). A discovered region of anyone else is refused:
// /dev/shm is world-writable (docs/architecture.md, "Trust model").

func addTrustFlags(pf *pflag.FlagSet, g *globals) {
	pf.StringVar(&g.ProducerUIDs, "producer-uid", os.Getenv(client.ProducerUIDEnv),
		"comma-separated uids, besides root and yourself, trusted to own a discovered region (env "+client.ProducerUIDEnv+")")
}

// clientOptions are the client options of the global flags.
func clientOptions(g *globals) (client.Options, error) {
	o := client.Options{Path: g.Region, Root: g.Root}
	for _, f := range strings.Split(g.ProducerUIDs, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		u, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return o, fmt.Errorf("--producer-uid %q: not a uid", f)
		}
		o.ProducerUIDs = append(o.ProducerUIDs, uint32(u))
	}
	return o, nil
}

// openClient opens the region of the global flags (--region, else
// discovered and owner-checked) through the client, the one way every
// command opens a region, so every command explains a missing, stale,
// untrusted or corrupt region the same way.
func openClient(g *globals, allowStale bool) (*client.Client, error) {
	return openClientWith(g, client.Options{AllowStale: allowStale})
}

// openClientAt is openClient of path (the global --region when "").
func openClientAt(g *globals, path string, allowStale bool) (*client.Client, error) {
	return openClientWith(g, client.Options{Path: path, AllowStale: allowStale})
}

// openClientWith opens with the global flags' options and those of extra
// (Path, when set, AllowStale, WritableControl).
func openClientWith(g *globals, extra client.Options) (*client.Client, error) {
	o, err := clientOptions(g)
	if err != nil {
		return nil, err
	}
	if extra.Path != "" {
		o.Path = extra.Path
	}
	o.AllowStale, o.WritableControl = extra.AllowStale, extra.WritableControl
	return client.Open(o)
}
