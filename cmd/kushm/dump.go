package main

import (
	"fmt"

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
				var c *client.Client
				switch {
				case image != "":
					b, err := shm.ReadImage(image)
					if err != nil {
						return err
					}
					r, err := shm.FromBytes(b)
					if err != nil {
						return err
					}
					c = client.FromRegion(r)
				default:
					var err error
					if c, err = openClient(g, true); err != nil {
						return err
					}
				}
				defer c.Close()
				switch g.Output {
				case "json":
					return writeJSON(g, c.Decode(max))
				case "table", "":
					return c.Dump(g.stdout, dump.Options{MaxEntries: max})
				}
				return fmt.Errorf("dump: unknown output format %q (table or json)", g.Output)
			},
		}
		cmd.Flags().IntVar(&max, "max", 64, "hash entries listed per section")
		cmd.Flags().StringVar(&image, "image", "", "read a saved region image instead of a live region")
		return cmd
	})
}
