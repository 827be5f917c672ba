package main

import (
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/kushm/kushm/internal/sys"
	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/shm"
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
			cgMode       string
			sampler      string
			maxProcs     int
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
				m, err := provider.ParseCgroupMode(cgMode)
				if err != nil {
					return err
				}
				cfg.Cgroups = m
				if cfg.Sampler, err = provider.ParseSamplerMode(sampler); err != nil {
					return err
				}
				so.Gops = !noGops
				if listen != "" {
					// The web view (page, /api, /metrics) of the region
					// being produced; its listener is opened first, so
					// that a taken port fails before the region exists.
					ln, err := listenWeb(g, listen)
					if err != nil {
						return err
					}
					defer ln.Close()
					so.Attach = func(p *provider.Provider) (func(), error) {
						return attachWeb(g, p.Path(), ln, max(cfg.Interval, 100*time.Millisecond))
					}
				}
				so.Log = g.stderr
				if maxProcs < 0 {
					return fmt.Errorf("--gomaxprocs %d: want 0 (Go's default) or more", maxProcs)
				}
				if maxProcs > 0 {
					defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(maxProcs))
				}
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
		f.StringVar(&listen, "listen", "", "serve the web view (/, /api, /metrics) on this address, e.g. 127.0.0.1:9477 (an empty host is 127.0.0.1)")
		f.BoolVar(&noGops, "no-gops", false, "do not run the gops diagnostics agent")
		f.IntVar(&maxProcs, "gomaxprocs", 1, "threads running Go code at once (0: Go's default, $GOMAXPROCS or the CPU count); one wakes fewer threads per tick (docs/benchmarks.md, the daemon at 10 ms)")
		addMetricsFlags(f, &g.metrics)
		f.StringVar(&cgMode, "cgroup-mode", "auto", "per-cgroup counting: auto (bpf as root, else off), bpf (a sched_switch program, every cgroup), perf (perf cgroup events for --cgroup-parent and its children), off")
		f.StringVar(&cfg.CgroupParent, "cgroup-parent", "", "the cgroup whose children --cgroup-mode perf counts, e.g. /system.slice")
		f.IntVar(&cfg.CgroupCapacity, "cgroup-capacity", provider.DefaultCgroupCapacity, "cgroups the region can hold (more are charged to the (other) row and counted)")
		f.IntVar(&cfg.CgroupMaxFDs, "cgroup-max-fds", provider.DefaultCgroupMaxFDs, "most perf descriptors --cgroup-mode perf may open (cgroups x CPUs x events)")
		f.DurationVar(&cfg.CgroupInterval, "cgroup-interval", 0, "per-cgroup copy interval (default: --proc-interval)")
		f.StringVar(&sampler, "cpu-sampler", "auto", "who reads the per-CPU counters: auto (bpf as root where the kernel allows it, else read), bpf (each CPU in a BPF timer pinned to it: no cross-CPU interrupt per read; Linux 6.7+), read (the daemon, with read(2))")
		return cmd
	})
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
