package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/userside/client"
	"github.com/kushm/kushm/userside/client/dump"
)

func init() {
	register(func(g *globals) *cobra.Command {
		var (
			max   int
			image string
		)
		cmd := &cobra.Command{
			Use:   "dump",
			Short: "list and decode every section of a region from its self-description (no section-specific code)",
			Long: "dump maps the region read-only (a stale producer's region too) and decodes every section through\n" +
				"the schema's column names and units. --image reads a saved copy of a region file instead.",
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				var r *shm.Region
				var err error
				switch {
				case image != "":
					b, rerr := os.ReadFile(image)
					if rerr != nil {
						return fmt.Errorf("read image: %w", rerr)
					}
					r, err = shm.FromBytes(b)
				default:
					var c *client.Client
					if c, err = openClient(g, true); err == nil {
						r = c.Region()
					}
				}
				if err != nil {
					return err
				}
				defer r.Close()
				switch g.Output {
				case "json":
					return writeJSON(g, dump.Decode(r, max))
				case "table", "":
					return dump.Dump(r, g.stdout, dump.Options{MaxEntries: max})
				}
				return fmt.Errorf("dump: unknown output format %q (table or json)", g.Output)
			},
		}
		cmd.Flags().IntVar(&max, "max", 64, "hash entries listed per section")
		cmd.Flags().StringVar(&image, "image", "", "read a saved region image instead of a live region")
		return cmd
	})
}
