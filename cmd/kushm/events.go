package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kushm/kushm/internal/errs"
	"github.com/kushm/kushm/pmu"
)

// eventsOutput is the JSON form of `kushm events`.
type eventsOutput struct {
	System  *pmu.System   `json:"system"`
	Presets []eventRow    `json:"presets"`
	Memory  memoryTraffic `json:"memory_traffic"`
}

type eventRow struct {
	ID        pmu.PresetID `json:"id"`
	Name      string       `json:"name"`
	Column    string       `json:"column"`
	Unit      string       `json:"unit"`
	Available bool         `json:"available"`
	Counts    string       `json:"counts"`
	Type      uint32       `json:"perf_type"`
	Config    string       `json:"perf_config"`
	PMU       string       `json:"pmu,omitempty"`
	Uncore    bool         `json:"uncore,omitempty"`
	Kind      string       `json:"kind,omitempty"`
	Reason    string       `json:"reason,omitempty"`
}

type memoryTraffic struct {
	Available bool          `json:"available"`
	Units     []pmu.IMCUnit `json:"units,omitempty"`
	Reason    string        `json:"reason,omitempty"`
}

func init() {
	register(func(g *globals) *cobra.Command {
		var static, exclKernel bool
		cmd := &cobra.Command{
			Use:   "events",
			Short: "list the PMU presets: available here or not, what each counts on this CPU, and why not",
			Long: `events probes every preset like papi_avail: it opens each event on the
calling thread (uncore events on one CPU) and closes it again, then prints
whether the preset can be counted here, which perf event counts it on this
CPU vendor and what that event really counts, or why it is unavailable.
With --static the verdict comes from /proc and /sys alone (for --root
fixture trees).`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				rep := pmu.Probe(&pmu.ProbeOptions{Root: g.Root, Static: static, ExcludeKernel: exclKernel})
				out := eventsOutput{System: rep.System}
				for _, a := range rep.Presets {
					m := a.Mapping
					out.Presets = append(out.Presets, eventRow{
						ID: a.Preset.ID, Name: a.Preset.Name, Column: a.Preset.Column, Unit: a.Preset.Unit,
						Available: a.Available, Counts: m.Counts, Type: m.Event.Type,
						Config: fmt.Sprintf("%#x", m.Event.Config), PMU: m.Event.PMU,
						Uncore: m.Flags&pmu.FlagUncore != 0, Kind: a.Kind, Reason: a.Reason,
					})
				}
				if units, err := pmu.DiscoverIMC(g.Root); err != nil {
					out.Memory.Reason = err.Error()
				} else {
					out.Memory.Available, out.Memory.Units = true, units
				}
				switch g.Output {
				case "json":
					enc := json.NewEncoder(g.stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(out)
				case "table", "":
					return printEvents(g, &out)
				}
				return fmt.Errorf("events: unknown output format %q (table or json)", g.Output)
			},
		}
		cmd.Flags().BoolVar(&static, "static", false, "decide from /proc and /sys only, without perf_event_open")
		cmd.Flags().BoolVar(&exclKernel, "exclude-kernel", false, "probe user-space-only counting")
		return cmd
	})
}

func printEvents(g *globals, out *eventsOutput) error {
	s := out.System
	core := s.CorePMU
	if core == "" {
		core = "none"
	}
	model := s.ModelName
	if model == "" {
		model = "unknown CPU"
	}
	fmt.Fprintf(g.stdout, "CPU: %s (%s, family %d model %d); core PMU: %s; perf_event_paranoid %d; privileged %v\n\n",
		model, s.VendorName, s.Family, s.Model, core, s.Paranoid, s.Privileged)
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPRESET\tAVAIL\tCOUNTS ON THIS CPU / WHY NOT")
	for _, r := range out.Presets {
		if r.Available {
			fmt.Fprintf(tw, "%d\t%s\tyes\t%s\n", r.ID, r.Name, r.Counts)
		} else {
			fmt.Fprintf(tw, "%d\t%s\tno\t%s\n", r.ID, r.Name, errs.Unavailable{Cause: r.Reason}.Reason())
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if out.Memory.Available {
		fmt.Fprintf(g.stdout, "\nmemory-controller traffic: available (%d uncore_imc PMUs, CAS count × 64 bytes)\n", len(out.Memory.Units))
	} else {
		fmt.Fprintf(g.stdout, "\n%s\n", out.Memory.Reason)
	}
	return nil
}
