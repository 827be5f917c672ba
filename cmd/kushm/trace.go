package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/ring"
)

// `kushm trace`: read the user tracepoint ring of an application's region.
func init() {
	register(func(g *globals) *cobra.Command {
		var follow bool
		var last int
		cmd := &cobra.Command{
			Use:   "trace [REGION]",
			Short: "print user tracepoint events from a region's trace ring (filtered by BPF programs in the application)",
			Args:  cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				path := g.Region
				if len(args) == 1 {
					path = args[0]
				}
				if path == "" {
					return fmt.Errorf("trace: name the application's region (kushm trace PATH or --region)")
				}
				c, err := openClientAt(g, path, true)
				if err != nil {
					return fmt.Errorf("trace: %w", err)
				}
				defer c.Close()
				tr, err := c.Trace()
				if err != nil {
					return fmt.Errorf("trace: %w", err)
				}
				sec, err := c.Region().Section(abi.SecNameTrace)
				if err != nil {
					return fmt.Errorf("trace: %w", err)
				}
				return printTrace(g, tr, traceWindow{count: uint64(sec.Count), check: c.Region().Check}, last, follow)
			},
		}
		cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events")
		cmd.Flags().IntVar(&last, "last", 0, "print only the last N events (0: all in the ring)")
		return cmd
	})
}

type traceEvent struct {
	Seq     uint64 `json:"seq"`
	Type    uint32 `json:"type"`
	TimeNs  uint64 `json:"time_ns"`
	CPU     uint32 `json:"cpu"`
	PID     uint32 `json:"pid"`
	Payload string `json:"payload"`
}

// maxTraceBacklog is the most records one pass prints: older ones are
// skipped (and said so), so that no ring, whatever it claims, makes the
// command run for long.
const maxTraceBacklog = 1 << 16

// traceWindow is what printTrace needs of the ring's region besides the
// ring: its record count and a check that the file is still the one
// mapped (shm.Region.Check).
type traceWindow struct {
	count uint64
	check func() error
}

// start is the first record worth reading at head: records older than
// the ring's count are overwritten (the spec: jump forward), and at most
// max are read in one pass. skipped counts what was jumped over.
func (w traceWindow) start(from, head, max uint64) (uint64, uint64) {
	if head <= from {
		return head, 0
	}
	keep := min(w.count, max)
	if head-from > keep {
		return head - keep, head - keep - from
	}
	return from, 0
}

func printTrace(g *globals, ring *ring.Ring, win traceWindow, last int, follow bool) error {
	head := ring.Head()
	var from uint64
	if last > 0 && head > uint64(last) {
		from = head - uint64(last)
	}
	from, skipped := win.start(from, head, maxTraceBacklog)
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	enc := json.NewEncoder(g.stdout)
	if g.Output != "json" {
		fmt.Fprintln(tw, "SEQ\tTYPE\tTIME_NS\tCPU\tPID\tPAYLOAD")
	}
	for {
		if skipped > 0 && g.Output != "json" {
			fmt.Fprintf(tw, "# %d older records skipped (overwritten, or beyond the %d shown at once)\n", skipped, uint64(maxTraceBacklog))
		}
		for n := from; n < head; n++ {
			rec, ok := ring.Read(n)
			if !ok {
				continue // overwritten or being written
			}
			ev := traceEvent{rec.Seq, rec.Type, rec.TimeNs, rec.CPU, rec.PID, hex.EncodeToString(rec.Payload)}
			if g.Output == "json" {
				if err := enc.Encode(ev); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%s\n", ev.Seq, ev.Type, ev.TimeNs, ev.CPU, ev.PID, ev.Payload)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if !follow {
			if lost := ring.Lost(); lost > 0 && g.Output != "json" {
				fmt.Fprintf(g.stdout, "# %d events dropped (too large)\n", lost)
			}
			return nil
		}
		from = head
		for head = ring.Head(); head == from; head = ring.Head() {
			if err := win.check(); err != nil {
				return fmt.Errorf("trace: %w", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		from, skipped = win.start(from, head, maxTraceBacklog)
	}
}
