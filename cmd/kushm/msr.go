package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kushm/kushm/internal/errs"
	"github.com/kushm/kushm/msr"
)

// msrOutput is the JSON form of `kushm msr`.
type msrOutput struct {
	CPU        int                `json:"cpu"`
	IntervalNS int64              `json:"interval_ns"`
	Sources    []msr.SourceStatus `json:"sources"`
	Entries    []msrRow           `json:"entries"`
	Derived    map[string]float64 `json:"derived"`
}

type msrRow struct {
	ID       msr.ID    `json:"id"`
	Name     string    `json:"name"`
	Addr     string    `json:"addr"`
	Scope    msr.Scope `json:"scope"`
	Kind     msr.Kind  `json:"kind"`
	Width    uint8     `json:"width"`
	Readable bool      `json:"readable"`
	Source   string    `json:"source,omitempty"`
	Raw      uint64    `json:"raw"`
	Absolute bool      `json:"absolute"`
	Value    float64   `json:"value"`
	Unit     string    `json:"unit"`
	// Rate is the increase per second over the interval (counters).
	Rate   *float64 `json:"rate_per_s,omitempty"`
	Reason string   `json:"reason,omitempty"`
}

func init() {
	register(func(g *globals) *cobra.Command {
		var cpu int
		var interval time.Duration
		cmd := &cobra.Command{
			Use:   "msr",
			Short: "list the MSR catalogue: entries readable here and their current decoded values",
			Long: `msr reads every catalogue entry on one CPU through the first source that
can (/dev/cpu/N/msr, the perf msr PMU, powercap), twice, --interval apart,
and prints the decoded value, the rate of counters, and derived figures
(effective frequency, busy %, watts). Entries that cannot be read say why.
Only allowlisted MSRs are ever read; nothing is ever written.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if g.Output != "json" && g.Output != "table" && g.Output != "" {
					return fmt.Errorf("msr: unknown output format %q (table or json)", g.Output)
				}
				out := readMSRs(g.Root, cpu, interval)
				if g.Output == "json" {
					enc := json.NewEncoder(g.stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(out)
				}
				return printMSRs(g, out)
			},
		}
		cmd.Flags().IntVar(&cpu, "cpu", 0, "CPU to read")
		cmd.Flags().DurationVar(&interval, "interval", 100*time.Millisecond, "time between the two reads (rates, derived values)")
		return cmd
	})
}

// readMSRs measures the catalogue on cpu (msr.Reader.Measure) and shapes
// it as msrOutput.
func readMSRs(root string, cpu int, interval time.Duration) *msrOutput {
	r := msr.Open(&msr.Options{Root: root})
	defer r.Close()
	m := r.Measure(cpu, interval)
	out := &msrOutput{CPU: cpu, IntervalNS: int64(interval), Sources: r.Sources(), Derived: m.Derived}
	for _, me := range m.Entries {
		e := me.Entry
		row := msrRow{ID: e.ID, Name: e.Name, Addr: fmt.Sprintf("%#x", e.Addr), Scope: e.Scope, Kind: e.Kind, Width: e.Width, Unit: e.Unit}
		if !me.Readable {
			row.Reason = me.Cause()
		} else {
			rd := me.Reading
			row.Readable, row.Source, row.Raw, row.Absolute, row.Value, row.Unit = true, rd.Source, rd.Raw, rd.Absolute, rd.Value, rd.Unit
			row.Rate = me.Rate
		}
		out.Entries = append(out.Entries, row)
	}
	return out
}

func printMSRs(g *globals, out *msrOutput) error {
	fmt.Fprintf(g.stdout, "CPU %d; sources:", out.CPU)
	for _, s := range out.Sources {
		if s.Available {
			fmt.Fprintf(g.stdout, " %s", s.Name)
		}
	}
	fmt.Fprintln(g.stdout)
	for _, s := range out.Sources {
		if !s.Available {
			fmt.Fprintf(g.stdout, "  no %s source: %s\n", s.Name, s.Reason)
		}
	}
	fmt.Fprintln(g.stdout)
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tADDR\tSCOPE\tSOURCE\tVALUE / WHY NOT")
	for _, r := range out.Entries {
		if !r.Readable {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t-\t%s\n", r.ID, r.Name, r.Addr, r.Scope, errs.Unavailable{Cause: r.Reason}.Reason())
			continue
		}
		val := fmt.Sprintf("%.6g %s", r.Value, r.Unit)
		if !r.Absolute {
			val = fmt.Sprintf("%d (counted since opened)", r.Raw)
		}
		if r.Rate != nil {
			unit := r.Unit
			if unit == "J" {
				unit = "W"
			} else {
				unit += "/s"
			}
			val += fmt.Sprintf(", %.4g %s", *r.Rate, unit)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Name, r.Addr, r.Scope, r.Source, val)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(out.Derived) > 0 {
		fmt.Fprintln(g.stdout)
		for _, k := range []string{"tsc_hz", "effective_hz", "busy_pct"} {
			if v, ok := out.Derived[k]; ok {
				fmt.Fprintf(g.stdout, "%s: %.6g\n", k, v)
			}
		}
		for _, e := range msr.Catalogue() {
			if v, ok := out.Derived[e.Name+"_watts"]; ok {
				fmt.Fprintf(g.stdout, "%s: %.4g W\n", e.Name, v)
			}
		}
	}
	return nil
}
