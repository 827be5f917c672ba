package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/gops/agent"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kushm/kushm/userside/client"
)

// ServeOptions add the daemon's side services to Run.
type ServeOptions struct {
	// Listen is the address of the Prometheus /metrics endpoint
	// ("" : none), e.g. "127.0.0.1:9477".
	Listen string
	// Gops runs a gops agent (github.com/google/gops) for diagnostics.
	Gops bool
	// Log receives one line per event (nil: discarded).
	Log io.Writer
	// Ready, when set, is called once the region is published.
	Ready func(p *Provider)
}

// Serve runs a provider until ctx is done: it creates the region, starts
// the gops agent and the metrics endpoint if asked, samples, and on
// return marks the region stopped and closes everything.
func Serve(ctx context.Context, cfg Config, o ServeOptions) error {
	logw := o.Log
	if logw == nil {
		logw = io.Discard
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(logw, time.Now().Format("15:04:05.000")+" kushm serve: "+format+"\n", args...)
	}
	if cfg.Logf == nil {
		cfg.Logf = logf
	}
	p, err := New(cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	logf("region %s: %d CPUs every %v, %s", p.Path(), len(p.CPUs()), p.Interval(), cfg.Watch)
	if un := p.Unavailable(); len(un) > 0 {
		names := make([]string, len(un))
		for i, u := range un {
			names[i] = u.Name
		}
		logf("n/a on this machine (%d; 'kushm status' says why): %s", len(un), strings.Join(names, ", "))
	}
	if o.Gops {
		if err := agent.Listen(agent.Options{ShutdownCleanup: false}); err != nil {
			logf("gops agent not started: %v", err)
		} else {
			defer agent.Close()
		}
	}
	var srv *http.Server
	if o.Listen != "" {
		c, err := client.Open(client.Options{Path: p.Path(), AllowStale: true})
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		defer c.Close()
		reg := prometheus.NewRegistry()
		reg.MustRegister(NewCollector(c))
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		ln, err := net.Listen("tcp", o.Listen)
		if err != nil {
			return fmt.Errorf("metrics endpoint: %w", err)
		}
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logf("metrics endpoint: %v", err)
			}
		}()
		logf("metrics on http://%s/metrics", ln.Addr())
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			srv.Shutdown(sctx)
		}()
	}
	if o.Ready != nil {
		o.Ready(p)
	}
	err = p.Run(ctx)
	logf("stopped (%d samples); region %s marked stopped", p.Stats().Ticks, p.Path())
	return err
}
