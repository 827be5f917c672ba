package provider

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/gops/agent"
)

// ServeOptions add the daemon's side services to Run.
type ServeOptions struct {
	// Attach, when set, is called once the region is published, before
	// sampling starts, to start services that read it (cmd/kushm's
	// Prometheus endpoint, for one: a reader, so it lives above the
	// producer). An error stops Serve; detach, when not nil, runs when
	// Serve returns, before the region is marked stopped.
	Attach func(p *Provider) (detach func(), err error)
	// Gops runs a gops agent (github.com/google/gops) for diagnostics.
	Gops bool
	// Log receives one line per event (nil: discarded).
	Log io.Writer
	// Ready, when set, is called once the region is published.
	Ready func(p *Provider)
}

// Serve runs a provider until ctx is done: it creates the region, starts
// the gops agent if asked and what Attach starts, samples, and on return
// marks the region stopped and closes everything.
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
	cpus := fmt.Sprintf("%d CPUs", len(p.CPUs()))
	if n := p.OfflineCPUs(); n > 0 {
		cpus += fmt.Sprintf(" (%d offline now: sampled once online)", n)
	}
	logf("region %s: %s every %v, %s", p.Path(), cpus, p.Interval(), cfg.Watch)
	if un := p.Unavailable(); len(un) > 0 {
		names := make([]string, len(un))
		for i, u := range un {
			names[i] = u.What
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
	if o.Attach != nil {
		detach, err := o.Attach(p)
		if err != nil {
			return err
		}
		if detach != nil {
			defer detach()
		}
	}
	if o.Ready != nil {
		o.Ready(p)
	}
	err = p.Run(ctx)
	logf("stopped (%d samples); region %s marked stopped", p.Stats().Ticks, p.Path())
	return err
}
