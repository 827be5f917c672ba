package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/tracker"
	"github.com/kushm/kushm/userside/web"
)

// openSyscallRegion maps the region (discovered under g.Root unless
// --region is given), with the control section writable when asked.
func openSyscallRegion(g *globals, writable bool) (*shm.Region, error) {
	return openRegion(g, shm.Options{WritableControl: writable, AllowStale: true})
}

func init() {
	register(func(g *globals) *cobra.Command {
		var set []string
		var kx100, warmup int
		cmd := &cobra.Command{
			Use:   "syscalls",
			Short: "per-syscall latency statistics and adaptive outlier thresholds from the region",
			Long: `syscalls prints, for every syscall the tracker (kushm outliers, or any BPF
program calling bpf_kushm_record_latency) has seen, its sample count, mean,
standard deviation, min, max, outliers and the threshold in force: the
override written in the control section, else mean + k·σ once the warm-up
count is reached ("warm-up" before). --set NR|NAME=NS writes an override
(0 = adaptive again); --k and --warmup set the parameters (k in hundredths).`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				writable := len(set) > 0 || kx100 >= 0 || warmup >= 0
				r, err := openSyscallRegion(g, writable)
				if err != nil {
					return fmt.Errorf("syscalls: %w", err)
				}
				defer r.Close()
				for _, s := range set {
					nr, ns, err := parseOverride(s)
					if err != nil {
						return fmt.Errorf("syscalls: --set %q: %w", s, err)
					}
					if err := tracker.SetOverride(r, nr, ns); err != nil {
						return fmt.Errorf("syscalls: %w", err)
					}
				}
				if kx100 >= 0 || warmup >= 0 {
					p := tracker.ReadParams(r)
					if kx100 >= 0 {
						p.Kx100 = uint64(kx100)
					}
					if warmup >= 0 {
						p.Warmup = uint64(warmup)
					}
					if err := tracker.SetParams(r, p); err != nil {
						return fmt.Errorf("syscalls: %w", err)
					}
				}
				st, err := tracker.ReadSyscalls(r)
				if err != nil {
					return fmt.Errorf("syscalls: %w", err)
				}
				p := tracker.ReadParams(r)
				switch g.Output {
				case "json":
					if st == nil {
						st = []tracker.SyscallStat{}
					}
					return writeJSON(g, web.SyscallsDoc{Kx100: p.Kx100, Warmup: p.Warmup, Syscalls: st})
				case "table", "":
					fmt.Fprintf(g.stdout, "threshold = mean + %d.%02d·σ after %d samples\n", p.Kx100/100, p.Kx100%100, p.Warmup)
					tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
					fmt.Fprintln(tw, "NR\tSYSCALL\tCOUNT\tMEAN\tSTDDEV\tMIN\tMAX\tOUTLIERS\tTHRESHOLD\t")
					for _, s := range st {
						th := time.Duration(s.ThresholdNs).String()
						switch {
						case s.Override:
							th += " (override)"
						case s.ThresholdNs == 0:
							th = "warm-up"
						}
						fmt.Fprintf(tw, "%d\t%s\t%d\t%v\t%v\t%v\t%v\t%d\t%s\t\n", s.NR, s.Name, s.Count,
							time.Duration(s.MeanNs), time.Duration(s.StdDevNs), time.Duration(s.MinNs),
							time.Duration(s.MaxNs), s.Outliers, th)
					}
					return tw.Flush()
				}
				return fmt.Errorf("syscalls: unknown output format %q (table or json)", g.Output)
			},
		}
		cmd.Flags().StringArrayVar(&set, "set", nil, "override a syscall's threshold: NR|NAME=NANOSECONDS (0: adaptive)")
		cmd.Flags().IntVar(&kx100, "k", -1, "k·100 of the adaptive threshold (0: default 300)")
		cmd.Flags().IntVar(&warmup, "warmup", -1, "samples before a threshold exists (0: default 64)")
		return cmd
	})

	register(func(g *globals) *cobra.Command {
		var pid uint32
		var only string
		var count int
		var dur time.Duration
		cmd := &cobra.Command{
			Use:   "outliers",
			Short: "stream syscalls slower than their adaptive threshold (kernel eBPF tracker)",
			Long: `outliers loads the tp_btf sys_enter/sys_exit tracker: every syscall's
latency goes to the kushm module's bpf_kushm_record_latency kfunc, and only
those above the threshold (see kushm syscalls) are streamed here, one line
each (comm, pid, syscall, latency, threshold). Needs the kushm module with
BTF and CAP_BPF+CAP_PERFMON. Stops on Ctrl-C, after --count events or --for.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				want := int64(-1)
				if only != "" {
					nr, ok := tracker.SyscallNumber(only)
					if !ok {
						return fmt.Errorf("outliers: unknown syscall %q", only)
					}
					want = int64(nr)
				}
				tr, err := tracker.Start(tracker.Options{TGID: pid})
				if err != nil {
					return fmt.Errorf("outliers: %w", err)
				}
				defer tr.Close()
				sig := make(chan os.Signal, 1)
				signal.Notify(sig, os.Interrupt)
				defer signal.Stop(sig)
				go func() { <-sig; tr.Close() }()
				if dur > 0 {
					tr.SetDeadline(time.Now().Add(dur))
				}
				enc := json.NewEncoder(g.stdout)
				if g.Output != "json" {
					fmt.Fprintf(g.stdout, "%-16s %7s %7s %-18s %12s %12s\n", "COMM", "PID", "TID", "SYSCALL", "LATENCY", "THRESHOLD")
				}
				for n := 0; count == 0 || n < count; {
					ev, err := tr.Read()
					if errors.Is(err, tracker.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
						return nil
					}
					if err != nil {
						return fmt.Errorf("outliers: %w", err)
					}
					if want >= 0 && int64(ev.NR) != want {
						continue
					}
					n++
					if g.Output == "json" {
						if err := enc.Encode(struct {
							tracker.Event
							Syscall string `json:"syscall"`
						}{ev, tracker.SyscallName(ev.NR)}); err != nil {
							return err
						}
						continue
					}
					fmt.Fprintf(g.stdout, "%-16s %7d %7d %-18s %12v %12v\n", ev.Comm, ev.PID, ev.TID,
						tracker.SyscallName(ev.NR), ev.Latency, ev.Threshold)
				}
				return nil
			},
		}
		cmd.Flags().Uint32Var(&pid, "pid", 0, "only this process (tgid)")
		cmd.Flags().StringVar(&only, "syscall", "", "only this syscall (name or number)")
		cmd.Flags().IntVar(&count, "count", 0, "stop after this many events (0: no limit)")
		cmd.Flags().DurationVar(&dur, "for", 0, "stop after this long (0: no limit)")
		return cmd
	})
}

func parseOverride(s string) (uint32, uint64, error) {
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			continue
		}
		nr, ok := tracker.SyscallNumber(s[:i])
		if !ok {
			return 0, 0, fmt.Errorf("unknown syscall %q", s[:i])
		}
		ns, err := strconv.ParseUint(s[i+1:], 10, 64)
		if err != nil {
			d, derr := time.ParseDuration(s[i+1:])
			if derr != nil || d < 0 {
				return 0, 0, fmt.Errorf("bad threshold %q", s[i+1:])
			}
			ns = uint64(d)
		}
		return nr, ns, nil
	}
	return 0, 0, errors.New("want NR|NAME=NANOSECONDS")
}
