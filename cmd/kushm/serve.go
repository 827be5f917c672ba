package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/kushm/kushm/internal/sys"
	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/userside/client"
	"github.com/kushm/kushm/userside/provider"
)

func init() {
	register(func(g *globals) *cobra.Command {
		var (
			cfg          provider.Config
			so           provider.ServeOptions
			pids         []int
			uid          int
			group        string
			mode, ctlMod string
			presets      []string
			noGops       bool
			listen       string
		)
		cmd := &cobra.Command{
			Use:   "serve",
			Short: "run the userspace provider: fill the region from perf_event_open, MSRs and /proc",
			Long: "serve creates the region (default /dev/shm/kushm, mode 0640; control file <region>.ctl, mode 0660)\n" +
				"and samples every --interval per CPU: PMU presets, MSRs, and per-process stats of the watched\n" +
				"processes (by default the caller's own; --pids, --cgroup or --uid choose others). It stops cleanly\n" +
				"on SIGINT/SIGTERM, marking the region stopped. A restart replaces a stale region.",
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				cfg.Root = g.Root
				cfg.Path = g.Region
				if cfg.Path == "" {
					cfg.Path = filepath.Join(g.Root, shm.DaemonPath)
				}
				switch {
				case len(pids) > 0:
					cfg.Watch.PIDs = pids
				case cfg.Watch.Cgroup != "":
				case uid >= 0:
					cfg.Watch.UID = &uid
				case uid == -2:
					cfg.Watch.None = true
				}
				for _, name := range presets {
					id, ok := pmu.PresetByName(name)
					if !ok {
						return fmt.Errorf("unknown preset %q", name)
					}
					cfg.Presets = append(cfg.Presets, id)
				}
				for _, m := range []struct {
					s   string
					dst *os.FileMode
				}{{mode, &cfg.Files.Mode}, {ctlMod, &cfg.Files.ControlMode}} {
					v, err := strconv.ParseUint(m.s, 8, 32)
					if err != nil || v > 0o777 {
						return fmt.Errorf("file mode %q: want octal permission bits such as 0640", m.s)
					}
					*m.dst = os.FileMode(v)
				}
				cfg.Files.GID = -1
				if group != "" {
					gid, err := lookupGroup(group)
					if err != nil {
						return err
					}
					cfg.Files.GID = gid
				}
				so.Gops = !noGops
				if listen != "" {
					so.Attach = func(p *provider.Provider) (func(), error) {
						return serveMetrics(p.Path(), listen, so.Log)
					}
				}
				so.Log = g.stderr
				ctx, stop := signal.NotifyContext(cmd.Context(), sys.TerminationSignals...)
				defer stop()
				return provider.Serve(ctx, cfg, so)
			},
		}
		f := cmd.Flags()
		f.DurationVar(&cfg.Interval, "interval", time.Second, "per-CPU sampling interval (10ms … 60s)")
		f.DurationVar(&cfg.ProcInterval, "proc-interval", 0, "process sampling interval (default: the larger of --interval and 1s)")
		f.IntSliceVar(&pids, "pids", nil, "watch these processes only")
		f.StringVar(&cfg.Watch.Cgroup, "cgroup", "", "watch the processes of this cgroup v2 (e.g. /sys/fs/cgroup/system.slice)")
		f.IntVar(&uid, "uid", -1, "watch the processes of this uid (default: your own; -2: none)")
		f.StringSliceVar(&presets, "presets", nil, "presets to count per CPU (default: all)")
		f.BoolVar(&cfg.NoMSR, "no-msr", false, "do not read MSRs")
		f.IntVar(&cfg.ProcCapacity, "capacity", provider.DefaultProcCapacity, "processes the region can hold")
		f.StringVar(&group, "group", "", "group of the region and control files (readers: group read; control: group write)")
		f.StringVar(&mode, "mode", "0640", "mode of the region file (never world-writable)")
		f.StringVar(&ctlMod, "control-mode", "0660", "mode of the control file <region>.ctl (never world-writable)")
		f.StringVar(&listen, "listen", "", "address of a Prometheus /metrics endpoint, e.g. 127.0.0.1:9477")
		f.BoolVar(&noGops, "no-gops", false, "do not run the gops diagnostics agent")
		return cmd
	})
}

// serveMetrics serves the region at path as Prometheus metrics on
// http://listen/metrics, reading it through the client like any reader;
// stop shuts the endpoint down.
func serveMetrics(path, listen string, logw io.Writer) (stop func(), err error) {
	if logw == nil {
		logw = io.Discard
	}
	c, err := client.Open(client.Options{Path: path, AllowStale: true})
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(c))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("metrics endpoint: %w", err)
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(logw, time.Now().Format("15:04:05.000")+" kushm serve: "+format+"\n", args...)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logf("metrics endpoint: %v", err)
		}
	}()
	logf("metrics on http://%s/metrics", ln.Addr())
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		c.Close()
	}, nil
}

func lookupGroup(name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		return n, nil
	}
	gr, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("--group %s: %w", name, err)
	}
	return strconv.Atoi(gr.Gid)
}
