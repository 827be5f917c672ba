package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/kushm/kushm/userside/provider"
)

func init() {
	register(func(g *globals) *cobra.Command {
		var o provider.DemoOptions
		cmd := &cobra.Command{
			Use:   "demo",
			Short: "run the provider on a temporary region, do some work, and read cache-miss and software-event stats back",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				o.Root = g.Root
				return provider.Demo(cmd.Context(), g.stdout, o)
			},
		}
		cmd.Flags().IntVar(&o.Pages, "pages", 4096, "new pages to touch")
		cmd.Flags().DurationVar(&o.Interval, "interval", 50*time.Millisecond, "sampling interval")
		return cmd
	})
}
