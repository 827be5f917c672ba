package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kushm/kushm/userside/client"
)

func checkOutput(g *globals) error {
	if g.Output != "table" && g.Output != "json" {
		return fmt.Errorf("unknown output format %q: use table or json", g.Output)
	}
	return nil
}

func init() {
	register(func(g *globals) *cobra.Command {
		var (
			cpu, pid, top int
			interval      time.Duration
			allowStale    bool
			by            string
		)
		cmd := &cobra.Command{
			Use:   "query METRIC",
			Short: "measure one counter (e.g. cache-misses) per CPU and per process from the region, over an interval",
			Long: "query maps the region read-only and samples METRIC twice, --interval apart: totals and rates per CPU,\n" +
				"and per process with --pid or --top. A counter the producer cannot read is \"n/a\" with the reason.\n" +
				"Metrics: " + fmt.Sprint(client.MetricNames()) + ", or a preset name such as PAPI_L3_TCM.",
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := checkOutput(g); err != nil {
					return err
				}
				if err := checkBy(by); err != nil {
					return err
				}
				id, err := client.ParseMetric(args[0])
				if err != nil {
					return err
				}
				c, err := openClient(g, allowStale)
				if err != nil {
					return err
				}
				defer c.Close()
				if by == "cgroup" {
					return queryByCgroup(cmd.Context(), g, c, id, interval, top)
				}
				res, err := c.Query(cmd.Context(), client.QueryOptions{Metric: id, Interval: interval, CPU: cpu, PID: pid, Top: top})
				if err != nil {
					return err
				}
				if g.Output == "json" {
					return writeJSON(g, res)
				}
				return writeQueryTable(g.stdout, res)
			},
		}
		f := cmd.Flags()
		f.IntVar(&cpu, "cpu", -1, "only this CPU")
		f.IntVar(&pid, "pid", 0, "this process")
		f.IntVar(&top, "top", 0, "the K processes with the highest rate")
		f.DurationVar(&interval, "interval", time.Second, "time between the two samples")
		f.BoolVar(&allowStale, "allow-stale", false, "read a region whose producer stopped or died")
		f.StringVar(&by, "by", "cpu", "rows per cpu (and process), or per cgroup (cgroup v2, named by path)")
		return cmd
	})
}
