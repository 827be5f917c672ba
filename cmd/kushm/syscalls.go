package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/tracker"
	"github.com/kushm/kushm/userside/client"
	"github.com/kushm/kushm/userside/web"
)

// openSyscallClient opens the region (discovered under g.Root unless
// --region is given), with the control section writable when asked.
func openSyscallClient(g *globals, writable bool) (*client.Client, error) {
	return openClientWith(g, client.Options{AllowStale: true, WritableControl: writable})
}

func init() {
	register(func(g *globals) *cobra.Command {
		var set, policies []string
		var kx100, warmup, decay int
		var mode, hist string
		var q, factor float64
		cmd := &cobra.Command{
			Use:   "syscalls",
			Short: "per-syscall latency distributions and adaptive outlier thresholds from the region",
			Long: `syscalls prints, for every syscall the tracker (kushm outliers, or any BPF
program calling bpf_kushm_record_latency) has seen, its sample count, the
p50, p90, p99 and p99.9 latencies of its recent window (the latency
histogram, which each CPU halves every 2^h of its samples), the maximum,
the outliers, and the threshold in force with its rule: the override
written in the control section, else k·σ (mean + k·σ), quantile (the
q-quantile's bucket bound × factor) or interp (the q-quantile
interpolated in its bucket × factor), once the warm-up count is reached
("warm-up" before). docs/latency-thresholds.md compares the rules.

--set NR|NAME=NS writes an override (0 = adaptive again); --mode, --k
(hundredths), --q, --factor, --warmup and --decay set the global rule;
--policy NR|NAME=MODE[:PARAM[:FACTOR]] gives one syscall its own rule
(PARAM is k for k·σ, q for the quantile modes; NAME=inherit: the global
rule again); --hist NR|NAME draws that syscall's distribution.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				global := kx100 >= 0 || warmup >= 0 || decay >= 0 || mode != "" || q >= 0 || factor >= 0
				writable := len(set) > 0 || len(policies) > 0 || global
				c, err := openSyscallClient(g, writable)
				if err != nil {
					return fmt.Errorf("syscalls: %w", err)
				}
				defer c.Close()
				for _, s := range set {
					nr, ns, err := parseOverride(s)
					if err != nil {
						return fmt.Errorf("syscalls: --set %q: %w", s, err)
					}
					if err := c.SetSyscallOverride(nr, ns); err != nil {
						return fmt.Errorf("syscalls: %w", err)
					}
				}
				for _, s := range policies {
					nr, m, param, f, err := parsePolicy(s)
					if err != nil {
						return fmt.Errorf("syscalls: --policy %q: %w", s, err)
					}
					if err := c.SetSyscallPolicy(nr, m, param, f); err != nil {
						return fmt.Errorf("syscalls: %w", err)
					}
				}
				if global {
					p := c.SyscallParams().Raw()
					if kx100 >= 0 {
						p.Kx100 = uint64(kx100)
					}
					if warmup >= 0 {
						p.Warmup = uint64(warmup)
					}
					if decay >= 0 {
						p.DecayShift = uint32(decay)
					}
					if mode != "" {
						m, ok := client.ParseMode(mode)
						if !ok {
							return fmt.Errorf("syscalls: --mode %q: want sigma, quantile or interp", mode)
						}
						p.Mode = m
					}
					if q >= 0 {
						if q >= 1 {
							return fmt.Errorf("syscalls: --q %v: want 0 < q < 1", q)
						}
						p.Qppm = uint32(math.Round(q * 1e6))
					}
					if factor >= 0 {
						p.FactorX1000 = uint64(math.Round(factor * 1000))
					}
					if err := c.SetSyscallParams(p); err != nil {
						return fmt.Errorf("syscalls: %w", err)
					}
				}
				st, err := c.Syscalls()
				if err != nil {
					return fmt.Errorf("syscalls: %w", err)
				}
				p := c.SyscallParams()
				if hist != "" {
					nr, ok := client.SyscallNumber(hist)
					if !ok {
						return fmt.Errorf("syscalls: --hist: unknown syscall %q", hist)
					}
					for _, s := range st {
						if s.NR == nr {
							if g.Output == "json" {
								return writeJSON(g, s)
							}
							return drawHist(g.stdout, s)
						}
					}
					return fmt.Errorf("syscalls: --hist: no samples of %s", client.SyscallName(nr))
				}
				switch g.Output {
				case "json":
					return writeJSON(g, web.NewSyscallsDoc(p, st))
				case "table", "":
					fmt.Fprintf(g.stdout, "threshold: %s after %d samples; each CPU halves its window every 2^%d samples\n",
						ruleText(p.Mode, p.Kx100, p.Qppm, p.FactorX1000), p.Warmup, p.DecayShift)
					tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
					fmt.Fprintln(tw, "NR\tSYSCALL\tCOUNT\tP50\tP90\tP99\tP99.9\tMAX\tOUTLIERS\tTHRESHOLD\tMODE\t")
					for _, s := range st {
						th := dur(s.ThresholdNs)
						if s.ThresholdNs == 0 && !s.Override {
							th = "warm-up"
						}
						fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t\n", s.NR, s.Name, s.Total,
							quant(s, s.P50Ns), quant(s, s.P90Ns), quant(s, s.P99Ns), quant(s, s.P999Ns),
							dur(s.MaxNs), s.Outliers, th, s.Mode)
					}
					return tw.Flush()
				}
				return fmt.Errorf("syscalls: unknown output format %q (table or json)", g.Output)
			},
		}
		cmd.Flags().StringArrayVar(&set, "set", nil, "override a syscall's threshold: NR|NAME=NANOSECONDS (0: adaptive)")
		cmd.Flags().StringArrayVar(&policies, "policy", nil, "a syscall's own rule: NR|NAME=MODE[:PARAM[:FACTOR]] (MODE sigma, quantile, interp or inherit)")
		cmd.Flags().StringVar(&mode, "mode", "", "the global rule: sigma (mean + k·σ), quantile (bucket bound) or interp (interpolated quantile)")
		cmd.Flags().IntVar(&kx100, "k", -1, "k·100 of the k·σ rule (0: default 300)")
		cmd.Flags().Float64Var(&q, "q", -1, "q of the quantile rules, 0 < q < 1 (0: default 0.999)")
		cmd.Flags().Float64Var(&factor, "factor", -1, "factor of the quantile rules (0: default 1.0)")
		cmd.Flags().IntVar(&warmup, "warmup", -1, "samples before a threshold exists (0: default 64)")
		cmd.Flags().IntVar(&decay, "decay", -1, "h: each CPU halves its window every 2^h samples, 4..40 (0: default 13)")
		cmd.Flags().StringVar(&hist, "hist", "", "draw the latency distribution of this syscall (name or number)")
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
					nr, ok := client.SyscallNumber(only)
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
						}{ev, client.SyscallName(ev.NR)}); err != nil {
							return err
						}
						continue
					}
					fmt.Fprintf(g.stdout, "%-16s %7d %7d %-18s %12v %12v\n", ev.Comm, ev.PID, ev.TID,
						client.SyscallName(ev.NR), ev.Latency, ev.Threshold)
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
		nr, ok := client.SyscallNumber(s[:i])
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

// ruleText describes a global rule.
func ruleText(mode uint32, kx100 uint64, qppm uint32, factorX1000 uint64) string {
	switch mode {
	case abi.ThModeQuantile, abi.ThModeInterp:
		how := "bucket bound"
		if mode == abi.ThModeInterp {
			how = "interpolated"
		}
		return fmt.Sprintf("%s of the %s quantile × %s", how, strconv.FormatFloat(float64(qppm)/1e6, 'f', -1, 64),
			strconv.FormatFloat(float64(factorX1000)/1000, 'f', -1, 64))
	}
	return fmt.Sprintf("mean + %d.%02d·σ", kx100/100, kx100%100)
}

func dur(ns uint64) string {
	if ns == math.MaxUint64 {
		return "∞"
	}
	if ns > math.MaxInt64 {
		return ">292y"
	}
	return time.Duration(ns).String()
}

// quant renders a window quantile ("-" without a histogram).
func quant(s client.SyscallStat, ns uint64) string {
	if s.Window == 0 {
		return "-"
	}
	if ns == math.MaxUint64 {
		return ">107s"
	}
	return dur(ns)
}

// parsePolicy parses NR|NAME=MODE[:PARAM[:FACTOR]] (PARAM: k for sigma, q
// for the quantile modes) into SetPolicy's arguments.
func parsePolicy(s string) (nr, mode, param, factorX1000 uint32, err error) {
	name, rule, ok := strings.Cut(s, "=")
	if !ok {
		return 0, 0, 0, 0, errors.New("want NR|NAME=MODE[:PARAM[:FACTOR]]")
	}
	nr, ok = client.SyscallNumber(name)
	if !ok {
		return 0, 0, 0, 0, fmt.Errorf("unknown syscall %q", name)
	}
	parts := strings.Split(rule, ":")
	if parts[0] == "inherit" && len(parts) == 1 {
		return nr, abi.ThModeInherit, 0, 0, nil
	}
	mode, ok = client.ParseMode(parts[0])
	if !ok || len(parts) > 3 || (mode == abi.ThModeSigma && len(parts) > 2) {
		return 0, 0, 0, 0, fmt.Errorf("bad rule %q", rule)
	}
	num := func(i int, scale float64, max float64) (uint32, error) {
		if len(parts) <= i {
			return 0, nil
		}
		v, err := strconv.ParseFloat(parts[i], 64)
		if err != nil || v <= 0 || v*scale > max {
			return 0, fmt.Errorf("bad number %q", parts[i])
		}
		return uint32(math.Round(v * scale)), nil
	}
	if mode == abi.ThModeSigma {
		param, err = num(1, 100, abi.MaxKx100)
	} else {
		param, err = num(1, 1e6, abi.MaxQppm)
		if err == nil {
			factorX1000, err = num(2, 1000, abi.MaxFactorX1000)
		}
	}
	return nr, mode, param, factorX1000, err
}

// histRows is the most rows drawHist draws: adjacent buckets are merged
// (the schema lowered, as Prometheus does) until the range fits.
const histRows = 32

// drawHist draws a syscall's latency distribution: one row per bucket
// (schema lowered until at most histRows rows), its upper bound, a bar
// and its count, the threshold's row marked.
func drawHist(w io.Writer, s client.SyscallStat) error {
	type row struct {
		label string
		le    float64 // seconds
		count uint64
	}
	var zero, over uint64
	var idx []int
	counts := map[int]uint64{}
	for _, b := range s.Hist {
		switch {
		case b.LeNs == 0:
			zero += b.Count
		case b.LeNs == math.MaxUint64:
			over += b.Count
		default:
			idx = append(idx, b.Index)
			counts[b.Index] += b.Count
		}
	}
	schema := abi.HistSchema
	for len(idx) > 0 && idx[len(idx)-1]-idx[0]+1 > histRows && schema > -4 {
		next := map[int]uint64{}
		var nidx []int
		for _, i := range idx {
			j := (i + 1) >> 1
			if _, ok := next[j]; !ok {
				nidx = append(nidx, j)
			}
			next[j] += counts[i]
		}
		idx, counts, schema = nidx, next, schema-1
	}
	var rows []row
	if zero != 0 {
		rows = append(rows, row{"0", 0, zero})
	}
	if len(idx) > 0 {
		for i := idx[0]; i <= idx[len(idx)-1]; i++ {
			le := math.Exp2(float64(i) / math.Exp2(float64(schema)))
			rows = append(rows, row{"≤ " + time.Duration(le*1e9).Round(time.Duration(max(1, le*1e9/1000))).String(), le, counts[i]})
		}
	}
	if over != 0 {
		rows = append(rows, row{"> 107.6s", math.Inf(1), over})
	}
	var most uint64
	for _, r := range rows {
		most = max(most, r.count)
	}
	fmt.Fprintf(w, "%s (nr %d): %d samples in the window (%d ever), p50 %s, p99 %s, p99.9 %s, max %s; threshold %s (%s)\n",
		s.Name, s.NR, s.Window, s.Total, quant(s, s.P50Ns), quant(s, s.P99Ns), quant(s, s.P999Ns), dur(s.MaxNs), dur(s.ThresholdNs), s.Mode)
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "(no histogram in this region)")
		return err
	}
	const width = 50
	th := float64(s.ThresholdNs) / 1e9
	marked := s.ThresholdNs == 0
	for i, r := range rows {
		bar := 0
		if most > 0 {
			bar = int((r.count*width + most - 1) / most)
		}
		mark := ""
		if !marked && th <= r.le && (i == 0 || th > rows[i-1].le) {
			mark, marked = " ◀ threshold", true
		}
		fmt.Fprintf(w, "%12s │%-*s %d%s\n", r.label, width, strings.Repeat("█", bar), r.count, mark)
	}
	return nil
}
