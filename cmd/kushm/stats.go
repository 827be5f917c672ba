package main

import (
	"time"

	"github.com/spf13/cobra"
)

func init() {
	register(func(g *globals) *cobra.Command {
		var (
			top        int
			interval   time.Duration
			allowStale bool
			by         string
		)
		cmd := &cobra.Command{
			Use:   "stats",
			Short: "every counter per CPU and the top processes, read from the region over an interval",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if err := checkOutput(g); err != nil {
					return err
				}
				if err := checkBy(by); err != nil {
					return err
				}
				c, err := openClient(g, allowStale)
				if err != nil {
					return err
				}
				defer c.Close()
				if by == "cgroup" {
					return statsByCgroup(cmd.Context(), g, c, interval, top)
				}
				st, err := c.Stats(cmd.Context(), interval)
				if err != nil {
					return err
				}
				if g.Output == "json" {
					return writeJSON(g, st)
				}
				return writeStatsTable(g.stdout, st, top)
			},
		}
		f := cmd.Flags()
		f.IntVar(&top, "top", 10, "processes shown")
		f.DurationVar(&interval, "interval", time.Second, "time between the two samples")
		f.BoolVar(&allowStale, "allow-stale", false, "read a region whose producer stopped or died")
		f.StringVar(&by, "by", "cpu", "rows per cpu and process, or per cgroup (with IPC/MPKI only where counted as one group)")
		return cmd
	})
}
