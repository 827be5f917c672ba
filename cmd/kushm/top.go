package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/kushm/kushm/userside/client"
)

func init() {
	register(func(g *globals) *cobra.Command {
		var (
			o  client.TopOptions
			by string
		)
		cmd := &cobra.Command{
			Use:   "top",
			Short: "live view: per-CPU counters and the top processes by cache misses",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				o.Open = client.Options{Path: g.Region, Root: g.Root}
				if err := checkBy(by); err != nil {
					return err
				}
				if by == "cgroup" {
					return topByCgroup(cmd.Context(), g, o)
				}
				return client.Top(cmd.Context(), g.stdout, o)
			},
		}
		f := cmd.Flags()
		f.DurationVar(&o.Interval, "interval", time.Second, "refresh period")
		f.IntVar(&o.Iterations, "iterations", 0, "screens to draw (0: until interrupted)")
		f.IntVar(&o.K, "k", 10, "processes shown")
		f.BoolVar(&o.Plain, "plain", false, "print screens one after another instead of redrawing")
		f.StringVar(&by, "by", "cpu", "per cpu and process, or per cgroup with its processes nested under it")
		return cmd
	})
}
