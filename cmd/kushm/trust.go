package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/kushm/kushm/shm"
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

// openRegion maps the region of the global flags (--region, else
// discovered and owner-checked) with ro.
func openRegion(g *globals, ro shm.Options) (*shm.Region, error) {
	o, err := clientOptions(g)
	if err != nil {
		return nil, err
	}
	return client.OpenRegion(o, ro)
}
