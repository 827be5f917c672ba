package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/userside/bpfrt"
)

// `kushm bpf ...`: the userspace eBPF runtime (userside/bpfrt).
func init() {
	register(func(g *globals) *cobra.Command {
		cmd := &cobra.Command{
			Use:   "bpf",
			Short: "run eBPF programs in userspace (and side by side in the kernel)",
		}
		cmd.AddCommand(bpfCheckCmd(g), bpfRunCmd(g, false), bpfRunCmd(g, true), bpfPluginCmd(g))
		return cmd
	})
}

type bpfFlags struct {
	engine string
	prog   string
	ctx    string
	ctxHex string
	repeat int
}

// bpfOptions wires the bpf_kushm_* kfuncs to the region when one is named
// or can be found; without a region, programs using them are refused.
func bpfOptions(g *globals) (*bpfrt.Options, func(), error) {
	opts := &bpfrt.Options{TraceOutput: g.stderr}
	c, err := openClient(g, true)
	if err != nil {
		if g.Region != "" || !errors.Is(err, shm.ErrNoRegion) {
			return nil, nil, err
		}
		return opts, func() {}, nil
	}
	k, err := bpfrt.NewRegionKushm(c.Region())
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	opts.Kushm = k
	return opts, func() { c.Close() }, nil
}

func (f *bpfFlags) context() ([]byte, error) {
	switch {
	case f.ctx != "" && f.ctxHex != "":
		return nil, errors.New("--ctx and --ctx-hex are exclusive")
	case f.ctx != "":
		return os.ReadFile(f.ctx)
	case f.ctxHex != "":
		return hex.DecodeString(strings.Join(strings.Fields(f.ctxHex), ""))
	}
	return nil, nil
}

func bpfCheckCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "check PROG",
		Short: "load and check a program (BPF ELF object or raw instructions) without running it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, done, err := bpfOptions(g)
			if err != nil {
				return err
			}
			defer done()
			col, err := bpfrt.LoadFile(args[0], opts)
			if err != nil {
				return err
			}
			for name, p := range col.Programs {
				fmt.Fprintf(g.stdout, "%s: ok (%d instructions)\n", name, p.Len())
			}
			return nil
		},
	}
}

func bpfRunCmd(g *globals, bench bool) *cobra.Command {
	f := &bpfFlags{}
	use, short := "run PROG", "run a program on each engine (interpreter, JIT, kernel) and print r0 side by side"
	if bench {
		use, short = "bench PROG", "time a program on each engine (interpreter, JIT, kernel): ns/event side by side"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, err := f.context()
			if err != nil {
				return err
			}
			opts, done, err := bpfOptions(g)
			if err != nil {
				return err
			}
			defer done()
			col, err := bpfrt.LoadFile(args[0], opts)
			if err != nil {
				return err
			}
			p, err := col.Pick(f.prog)
			if err != nil {
				return err
			}
			repeat := 0
			if bench {
				repeat = f.repeat
			}
			var engines []bpfrt.Engine
			if f.engine != "" && f.engine != "auto" {
				e, err := bpfrt.ParseEngine(f.engine)
				if err != nil {
					return err
				}
				engines = []bpfrt.Engine{e}
			}
			rs := bpfrt.SideBySide(col, p, ctx, repeat, engines...)
			if g.Output == "json" {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rs)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			if bench {
				fmt.Fprintln(tw, "ENGINE\tR0\tNS/EVENT\tNOTE")
			} else {
				fmt.Fprintln(tw, "ENGINE\tR0\tNOTE")
			}
			for _, r := range rs {
				note := r.Note
				r0 := fmt.Sprintf("%#x", r.R0)
				ns := fmt.Sprintf("%.1f", r.NsPerEvent)
				if r.Error != "" {
					r0, ns, note = "-", "-", r.Error
				}
				if bench {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Engine, r0, ns, note)
				} else {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Engine, r0, note)
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&f.engine, "engine", "auto", "userspace engine: interp, jit, or auto (both where the JIT exists)")
	cmd.Flags().StringVar(&f.prog, "prog", "", "program name in the object (default: the first)")
	cmd.Flags().StringVar(&f.ctx, "ctx", "", "file holding the context bytes")
	cmd.Flags().StringVar(&f.ctxHex, "ctx-hex", "", "context bytes in hex")
	if bench {
		cmd.Flags().IntVarP(&f.repeat, "count", "n", 1_000_000, "events to time per engine")
	}
	return cmd
}

// bpfPluginCmd speaks the bpf_conformance runner's plugin protocol: the
// memory is the first argument (space-separated hex bytes), the program
// arrives on stdin; r0 is printed in hex.
func bpfPluginCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:                "plugin [--engine=interp|jit] [MEMORY-HEX]",
		Short:              "bpf_conformance plugin: program (hex) on stdin, memory (hex) as argument, prints r0 (RFC 9669 shifts)",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			mem := ""
			engine := bpfrt.EngineAuto
			for _, a := range args {
				if v, ok := strings.CutPrefix(a, "--engine="); ok {
					e, err := bpfrt.ParseEngine(v)
					if err != nil {
						return err
					}
					engine = e
					continue
				}
				if !strings.HasPrefix(a, "-") && mem == "" {
					mem = a
				}
			}
			r0, err := bpfrt.ConformancePlugin(mem, cmd.InOrStdin(), engine)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.stdout, "%x\n", r0)
			return err
		},
	}
}
