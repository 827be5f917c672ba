package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/userside/client"
)

func init() {
	register(func(g *globals) *cobra.Command {
		var (
			o  topOptions
			by string
		)
		cmd := &cobra.Command{
			Use:   "top",
			Short: "live view: per-CPU counters and the top processes by cache misses",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				open, err := clientOptions(g)
				if err != nil {
					return err
				}
				o.Open = open
				if err := checkBy(by); err != nil {
					return err
				}
				if by == "cgroup" {
					return topByCgroup(cmd.Context(), g, o)
				}
				return runTop(cmd.Context(), g.stdout, o)
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

// topOptions configure runTop.
type topOptions struct {
	Open       client.Options // how to find the region
	Interval   time.Duration  // refresh period (default 1 s)
	Iterations int            // screens to draw; 0: until ctx is done
	K          int            // processes shown (default 10)
	// Plain writes screens one after another instead of redrawing the
	// terminal (for logs and tests).
	Plain bool
}

// runTop draws a live view of the region every interval: per-CPU rates of
// every available counter and the top processes by cache misses (by CPU
// use where cache misses are not available). When the producer dies it
// says so and waits for a new one, re-opening the region.
func runTop(ctx context.Context, w io.Writer, o topOptions) error {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.K <= 0 {
		o.K = 10
	}
	var c *client.Client
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	var p0 *client.CPUSample
	var procs0 []client.Proc
	for i := 0; o.Iterations == 0 || i < o.Iterations; i++ {
		if i > 0 {
			t := time.NewTimer(o.Interval)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
		// A dead producer, or a region file that shrank or was replaced
		// (a restart): reopen.
		if c != nil && (c.CheckProducer() != nil || c.Region().Check() != nil) {
			c.Close()
			c, p0 = nil, nil
		}
		if c == nil {
			var err error
			if c, err = client.Open(o.Open); err != nil {
				if i == 0 {
					return err
				}
				c = nil
				fmt.Fprintf(w, "%swaiting for a producer: %v\n", clearScreen(o.Plain), err)
				continue
			}
		}
		p1, err := c.SamplePMU()
		if errors.Is(err, shm.ErrChanged) {
			fmt.Fprintf(w, "%s%v: reopening\n", clearScreen(o.Plain), err)
			c.Close()
			c, p0 = nil, nil
			continue
		}
		if err != nil {
			return err
		}
		procs1, _ := c.Processes()
		if p0 == nil {
			p0, procs0 = p1, procs1
			fmt.Fprintf(w, "%skushm top: %s, first sample taken, rates in %v\n", clearScreen(o.Plain), c.Path(), o.Interval)
			continue
		}
		st := c.Delta(p0, p1, procs0, procs1)
		p0, procs0 = p1, procs1
		s := c.Status()
		fmt.Fprintf(w, "%skushm top: %s  producer %s %s pid %d, heartbeat %v ago  %s\n", clearScreen(o.Plain),
			s.Path, s.Producer, s.ProducerName, s.PID, s.HeartbeatAge.Round(time.Millisecond), time.Now().Format("15:04:05"))
		n := len(st.Unavailable)
		st.Unavailable = nil
		if err := writeStatsTable(w, st, o.K); err != nil {
			return err
		}
		if n > 0 {
			fmt.Fprintf(w, "\n%d counters n/a on this machine ('kushm status' says why)\n", n)
		}
	}
	return nil
}

func clearScreen(plain bool) string {
	if plain {
		return "\n"
	}
	return "\x1b[H\x1b[2J"
}
