package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/kushm/kushm/internal/sys"
	"github.com/kushm/kushm/userside/client"
	"github.com/kushm/kushm/userside/web"
)

// writeJSON is every -o json of the tool: the encoder of the web view's
// /api documents.
func writeJSON(g *globals, v any) error { return web.EncodeJSON(g.stdout, v) }

// metricsCollectors are the collectors of the Prometheus endpoint of the
// region c reads (docs/grafana/kushm.json queries their metrics).
func metricsCollectors(g *globals, c *client.Client) []prometheus.Collector {
	var namer client.CgroupNamer
	if n, err := client.NewCgroupNamer(g.Root); err == nil {
		namer = n
	}
	return []prometheus.Collector{newCollector(c), newSyscallCollector(c), newCgroupCollector(c, namer, g.metrics)}
}

// metricsHandler is the Prometheus endpoint of the region c reads.
func metricsHandler(g *globals, c *client.Client) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metricsCollectors(g, c)...)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// listenWeb opens the web view's listener, printing the warning of a
// non-loopback address.
func listenWeb(g *globals, addr string) (net.Listener, error) {
	ln, warning, err := web.Listen(addr)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	if warning != "" {
		fmt.Fprintln(g.stderr, "kushm:", warning)
	}
	return ln, nil
}

// serveWeb serves the page, /api and /metrics of the region at path (or
// the discovered one) on ln until ctx is done, reading it every interval.
// It closes ln.
func serveWeb(ctx context.Context, g *globals, path string, ln net.Listener, interval time.Duration) error {
	c, err := openClientAt(g, path, true)
	if err != nil {
		ln.Close()
		return fmt.Errorf("web: %w", err)
	}
	defer c.Close()
	// A restarted daemon or reloaded module is followed: its region
	// (at the path found now) is re-opened once it is live.
	at := c.Path()
	s := web.New(c, web.Options{Interval: interval, Cgroups: cgroupNamer(g),
		Metrics: func(c *client.Client) http.Handler { return metricsHandler(g, c) },
		Reopen:  func() (*client.Client, error) { return openClientAt(g, at, false) }})
	fmt.Fprintf(g.stderr, "kushm: web view of %s on http://%s/ (every %v; /api, /metrics)\n", c.Path(), ln.Addr(), s.Interval())
	return s.Serve(ctx, ln)
}

// attachWeb starts the web view of the region at path on ln, for
// provider.ServeOptions.Attach; detach stops it.
func attachWeb(g *globals, path string, ln net.Listener, interval time.Duration) (detach func(), err error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	c, err := client.Open(client.Options{Path: path, AllowStale: true})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("web: %w", err)
	}
	s := web.New(c, web.Options{Interval: interval, Cgroups: cgroupNamer(g),
		Metrics: func(c *client.Client) http.Handler { return metricsHandler(g, c) }})
	fmt.Fprintf(g.stderr, "kushm: web view of %s on http://%s/ (every %v; /api, /metrics)\n", c.Path(), ln.Addr(), s.Interval())
	go func() { done <- s.Serve(ctx, ln) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintf(g.stderr, "kushm: web view: %v\n", err)
		}
		c.Close()
	}, nil
}

func init() {
	register(func(g *globals) *cobra.Command {
		var (
			listen   string
			interval time.Duration
		)
		cmd := &cobra.Command{
			Use:   "web",
			Short: "serve a live page of the region (plots, top processes, syscall latency, status), its JSON (/api) and /metrics; reader only",
			Long: "web maps the region read-only (the kernel module's or the daemon's; a stopped producer's too) and serves,\n" +
				"on --listen (127.0.0.1 unless a host is given): / a live page, /api/ the JSON documents of\n" +
				"status, stats, query, syscalls and dump -o json (docs/web.md), and /metrics for Prometheus.\n" +
				"It writes nothing, and follows a restarted producer (a new region at the same path). Listening on a\n" +
				"non-loopback address prints a warning naming the data exposed.",
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				ctx, stop := signal.NotifyContext(cmd.Context(), sys.TerminationSignals...)
				defer stop()
				ln, err := listenWeb(g, listen)
				if err != nil {
					return err
				}
				return serveWeb(ctx, g, g.Region, ln, interval)
			},
		}
		f := cmd.Flags()
		f.StringVar(&listen, "listen", "127.0.0.1:9477", "address to serve on (an empty host is 127.0.0.1)")
		f.DurationVar(&interval, "interval", time.Second, "how often the region is read and the page updated")
		addMetricsFlags(f, &g.metrics)
		return cmd
	})
}
