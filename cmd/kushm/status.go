package main

import (
	"github.com/spf13/cobra"
)

func init() {
	register(func(g *globals) *cobra.Command {
		return &cobra.Command{
			Use:   "status",
			Short: "which producer fills the region (daemon or kernel module), its age, sections, and what is unavailable and why",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if err := checkOutput(g); err != nil {
					return err
				}
				// A stale region is reported, not refused.
				c, err := openClient(g, true)
				if err != nil {
					return err
				}
				defer c.Close()
				st := c.Status()
				if g.Output == "json" {
					return writeJSON(g, st)
				}
				return writeStatusTable(g.stdout, &st)
			},
		}
	})
}
