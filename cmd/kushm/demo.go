package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/sys"
	"github.com/kushm/kushm/msr"
	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/userside/client"
	"github.com/kushm/kushm/userside/provider"
)

func init() {
	register(func(g *globals) *cobra.Command {
		var o demoOptions
		cmd := &cobra.Command{
			Use:   "demo",
			Short: "run the provider on a temporary region, do some work, and read cache-miss and software-event stats back",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				o.Root = g.Root
				return demo(cmd.Context(), g.stdout, o)
			},
		}
		cmd.Flags().IntVar(&o.Pages, "pages", 4096, "new pages to touch")
		cmd.Flags().DurationVar(&o.Interval, "interval", 50*time.Millisecond, "sampling interval")
		return cmd
	})
}

// demoOptions configure demo.
type demoOptions struct {
	Root     string        // of /proc, /sys, /dev ("" is "/")
	Dir      string        // for the temporary region ("" : os.TempDir())
	Pages    int           // pages to touch (default 4096)
	Interval time.Duration // sampling interval (default 50 ms)
}

// demo runs the whole pipeline on this machine in a few seconds: a
// provider on a temporary region, some work (touching new pages), a
// cache-miss query and the per-CPU software events read back from the
// region, and one "n/a: ... because ..." line for each counter this
// machine lacks.
func demo(ctx context.Context, w io.Writer, o demoOptions) error {
	if o.Pages <= 0 {
		o.Pages = 4096
	}
	if o.Interval <= 0 {
		o.Interval = 50 * time.Millisecond
	}
	dir, err := os.MkdirTemp(o.Dir, "kushm-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "kushm")
	uid := os.Geteuid()
	p, err := provider.New(provider.Config{Path: path, Root: o.Root, Interval: o.Interval, ProcInterval: 2 * o.Interval, Watch: provider.Watch{UID: &uid}})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer p.Close()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(rctx) }()
	defer func() { cancel(); <-done }()

	c, err := client.Open(client.Options{Path: path})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer c.Close()
	fmt.Fprintf(w, "kushm demo: provider %s (pid %d) on %s: %d CPUs sampled every %v, processes of uid %d\n\n",
		provider.Name, os.Getpid(), path, len(p.CPUs()), o.Interval, uid)

	// 1. The cache-miss query, exactly as 'kushm query cache-misses --top 5'.
	fmt.Fprintln(w, "$ kushm query cache-misses --top 5")
	q, err := c.Query(ctx, client.QueryOptions{Metric: pmu.PAPI_L3_TCM, Interval: 4 * o.Interval, CPU: -1, Top: 5})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := writeQueryTable(w, q); err != nil {
		return err
	}

	// 2. Work, measured through the region.
	p0, err := c.SamplePMU()
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	m0, _ := c.SampleMSR()
	procs0, _ := c.Processes()
	self := os.Getpid()
	before, _ := c.Process(self)
	size := o.Pages * os.Getpagesize()
	mem, err := sys.MmapAnon(size)
	if err != nil {
		return fmt.Errorf("demo: map %d bytes: %w", size, err)
	}
	for i := 0; i < size; i += os.Getpagesize() {
		mem[i] = 1
	}
	sys.Munmap(mem)
	// Let the provider take a few samples of it (procs every 2 intervals).
	time.Sleep(5 * o.Interval)
	p1, err := c.SamplePMU()
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	m1, _ := c.SampleMSR()
	procs1, _ := c.Processes()
	after, perr := c.Process(self)

	fmt.Fprintf(w, "\n$ kushm stats   # while this process touched %d new pages (%d MiB)\n", o.Pages, size>>20)
	st := c.Delta(p0, p1, procs0, procs1)
	st.Unavailable = nil // listed once, at the end
	if err := writeStatsTable(w, st, 5); err != nil {
		return err
	}
	pf := int(pmu.SW_PAGE_FAULTS)
	switch {
	case perr != nil:
		fmt.Fprintf(w, "\nthis process (pid %d): not in the procs table: %v\n", self, perr)
	case after.Has(pf) && before.Has(pf):
		d := after.Counters[pf] - before.Counters[pf]
		verdict := "ok: ≥ the pages touched"
		if d < uint64(o.Pages) {
			verdict = "FEWER than the pages touched"
		}
		fmt.Fprintf(w, "\nthis process (pid %d, %s): +%d page faults for %d pages touched (%s)\n", self, after.Comm, d, o.Pages, verdict)
	default:
		fmt.Fprintf(w, "\nthis process (pid %d): page faults n/a\n", self)
	}
	var sum uint64
	ok := false
	for cpu := range p1.Rows {
		d := atomicarr.Diff(&p0.Rows[cpu], &p1.Rows[cpu])
		if d.Valid&(1<<pf) != 0 {
			sum += d.Diff[pf]
			ok = true
		}
	}
	if ok {
		fmt.Fprintf(w, "all CPUs: +%d page faults in the same interval\n", sum)
	}
	if m0 != nil && m1 != nil {
		for cpu := range m1.Rows {
			if m0.Err[cpu] != nil || m1.Err[cpu] != nil {
				continue
			}
			d := atomicarr.Diff(&m0.Rows[cpu], &m1.Rows[cpu])
			if r, ok := d.Rate(int(msr.TSC)); ok {
				fmt.Fprintf(w, "cpu %d: TSC ticks at %.3f GHz (msr section)\n", cpu, r/1e9)
			}
		}
	}
	fmt.Fprintln(w, "\nnot available on this machine:")
	for _, u := range c.Unavailable() {
		fmt.Fprintf(w, "n/a: %s\n", u.Error())
	}
	cancel()
	if err := <-done; err != nil {
		done <- nil
		return fmt.Errorf("demo: provider: %w", err)
	}
	done <- nil
	fmt.Fprintf(w, "\nprovider stopped after %d samples; region removed.\n", p.Stats().Ticks)
	return nil
}
