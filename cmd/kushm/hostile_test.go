package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/sys"
	"github.com/kushm/kushm/ring"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/userside/client"
	"github.com/kushm/kushm/userside/client/dump"
	"github.com/kushm/kushm/userside/provider"
)

// The hostile-file suite (issue 11): every entry point, run as a separate
// process (this test binary re-executed as the kushm command), against
// region files another local user could make: FIFOs, files planted by
// another uid, sections claiming huge sizes in sparse files, heartbeats in
// the future, terminal escapes, counts of 2^64-1, rings with absurd heads,
// files shrunk while a command maps them. Each run must end within
// cliLimit, by itself, with exit status 0 or 1 (no signal, no panic), a
// one-line error naming the cause, at most cliMaxRSS of memory, and no
// control character from the region on its output.

const (
	cliEnv    = "KUSHM_TEST_AS_CLI"
	cliLimit  = 20 * time.Second
	cliMaxRSS = 256 << 20
	nobody    = 65534
)

func TestMain(m *testing.M) {
	if os.Getenv(cliEnv) == "1" {
		main()
		os.Exit(0)
	}
	code := m.Run()
	if baseOnce.ok {
		os.RemoveAll(baseOnce.b.dir)
	}
	os.Exit(code)
}

// cliResult is what one run of the command did.
type cliResult struct {
	args           []string
	stdout, stderr string
	code           int // exit status, -1 when killed by a signal
	signal         syscall.Signal
	elapsed        time.Duration
	maxRSS         int64 // bytes
	killedByUs     bool
}

// runCLI runs the kushm command (this binary) with args; after stopAfter
// (0: never) it is sent SIGINT, as a user ends `trace -f`. during, when
// set, runs while it does.
func runCLI(t *testing.T, args []string, stopAfter time.Duration, during func()) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), cliEnv+"=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	res := cliResult{args: args}
	var timer *time.Timer
	if stopAfter > 0 {
		timer = time.AfterFunc(stopAfter, func() {
			res.killedByUs = true
			cmd.Process.Signal(syscall.SIGKILL)
		})
	}
	if during != nil {
		during()
	}
	err := cmd.Wait()
	if timer != nil {
		timer.Stop()
	}
	res.elapsed = time.Since(start)
	res.stdout, res.stderr = out.String(), errb.String()
	st := cmd.ProcessState
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		res.maxRSS = ru.Maxrss << 10
	}
	ws := st.Sys().(syscall.WaitStatus)
	res.code = ws.ExitStatus()
	if ws.Signaled() {
		res.signal = ws.Signal()
	}
	if ctx.Err() != nil {
		t.Errorf("%v: still running after %v: a hang", args, cliLimit)
	}
	_ = err
	return res
}

// check asserts the properties every run must have, and returns its error
// line ("" on success).
func (r cliResult) check(t *testing.T) string {
	t.Helper()
	switch {
	case r.killedByUs && r.signal == syscall.SIGKILL:
		// A follower we stopped: it must not have crashed before.
	case r.signal != 0:
		t.Errorf("%v: killed by %v\nstderr: %s", r.args, r.signal, r.stderr)
	case r.code != 0 && r.code != 1:
		t.Errorf("%v: exit status %d\nstderr: %s", r.args, r.code, r.stderr)
	}
	for _, bad := range []string{"panic", "goroutine ", "SIGBUS", "SIGSEGV", "fatal error"} {
		if strings.Contains(r.stderr, bad) {
			t.Errorf("%v: crashed (%q on stderr):\n%s", r.args, bad, r.stderr)
		}
	}
	if r.maxRSS > cliMaxRSS {
		t.Errorf("%v: max RSS %d MiB > %d MiB", r.args, r.maxRSS>>20, cliMaxRSS>>20)
	}
	for _, s := range []string{r.stdout, r.stderr} {
		if i := strings.IndexFunc(s, func(c rune) bool { return c == 0x1b || c == 0x9b || c == 0x07 || c == '\r' }); i >= 0 {
			t.Errorf("%v: a control character reaches the terminal at %d: %q", r.args, i, s[max(0, i-20):min(len(s), i+20)])
		}
	}
	if r.code == 1 && !r.killedByUs {
		line := strings.TrimSpace(r.stderr)
		if strings.Count(line, "\n") > 0 || !strings.HasPrefix(line, "kushm: ") {
			t.Errorf("%v: want one error line \"kushm: ...\", got:\n%s", r.args, r.stderr)
		}
		return line
	}
	return ""
}

// base is a region the daemon wrote (sampled once, then made to look
// live for an hour: running, heartbeat now, period 1 h, this pid), and
// an application region with a trace ring; tests copy them per case.
type base struct {
	dir, region, app string
}

var baseOnce struct {
	b   base
	err error
	ok  bool
}

func makeBase(t *testing.T) base {
	t.Helper()
	if baseOnce.ok {
		return baseOnce.b
	}
	dir, err := os.MkdirTemp("", "kushm-hostile-base")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "kushm")
	p, err := provider.New(provider.Config{Path: path, Interval: 50 * time.Millisecond, Watch: provider.Watch{PIDs: []int{os.Getpid()}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Sample(); err != nil {
		t.Fatal(err)
	}
	p.Close()
	patchLive(t, path)
	app := filepath.Join(dir, "app")
	r, err := shm.Create(app, shm.Layout{NCPUs: 1, ProducerKind: abi.ProducerApp, ProducerName: "hostile-app",
		HeartbeatPeriod: time.Hour, Sections: []shm.SectionSpec{ring.Spec(64, 16)}}, shm.CreateOptions{GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	rg, err := ring.Open(r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		rg.Write(7, sys.MonotonicNs(), 0, []byte{byte(i), 0x1b, '[', '2', 'J'})
	}
	r.Close()
	baseOnce.b, baseOnce.ok = base{dir: dir, region: path, app: app}, true
	return baseOnce.b
}

// patchLive makes the region at path look produced by this live process.
func patchLive(t *testing.T, path string) {
	poke(t, path, 36, u32le(uint32(os.Getpid())))
	poke(t, path, 48, u64le(sys.MonotonicNs()))
	poke(t, path, 56, u64le(uint64(time.Hour)))
	poke(t, path, 64, u32le(abi.StateRunning))
}

func u64le(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
func u32le(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func poke(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
}

// hostileCase is one generated file of a class: mutate makes it from a
// copy of the base at dir/dev/shm/kushm (and dir/dev/shm/app).
type hostileCase struct {
	name   string
	mutate func(t *testing.T, region, app string)
	// discover: run the commands by discovery under --root instead of
	// --region (the planted-file class).
	discover bool
	// want: text every failing command's error must hold ("" any).
	want string
	// ok: commands that must succeed on this file.
	ok []string
	// status: what `kushm status` must say of this file.
	status string
}

// section finds a section of the region at path (offset, entry offset).
func section(t *testing.T, path, name string) (shm.Section, int64) {
	t.Helper()
	r, err := shm.Open(path, shm.Options{AllowStale: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, err := r.Section(name)
	if err != nil {
		t.Fatal(err)
	}
	return *s, abi.SectionTableOff + int64(s.Index)*abi.SectionEntrySize
}

// relocate moves section name to the end of the file with size bytes (a
// sparse file: the claim costs nothing), keeping its first keep bytes.
func relocate(t *testing.T, path, name string, size uint64, keep int) (newOff uint64) {
	t.Helper()
	s, e := section(t, path, name)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	head := b[s.Offset : s.Offset+uint64(min(uint64(keep), s.Size))]
	newOff = uint64(len(b))
	size = (size + 4095) &^ 4095
	total := newOff + size
	if err := os.Truncate(path, int64(total)); err != nil {
		t.Fatal(err)
	}
	poke(t, path, int64(newOff), head)
	poke(t, path, e+24, u64le(newOff))
	poke(t, path, e+32, u64le(size))
	poke(t, path, 16, u64le(total))
	return newOff
}

func hostileCases(t *testing.T) []hostileCase {
	fifo := func(p string) {
		os.Remove(p)
		if err := syscall.Mkfifo(p, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	return []hostileCase{
		{name: "intact", ok: []string{"dump", "dump-image", "status", "syscalls", "syscalls-set", "query", "stats", "top", "bpf-run", "bpf-run-jit", "trace"}},
		{name: "region-fifo", mutate: func(t *testing.T, r, a string) { fifo(r); fifo(a) }, want: "FIFO"},
		{name: "region-fifo-discovered", discover: true, mutate: func(t *testing.T, r, a string) { fifo(r) }, want: "FIFO"},
		{name: "ctl-fifo", mutate: func(t *testing.T, r, a string) { fifo(r + ".ctl") },
			ok: []string{"dump", "status", "syscalls", "query", "stats", "top", "bpf-run", "bpf-run-jit"}, want: "FIFO", status: "MISSING (control file"},
		{name: "ctl-empty", mutate: func(t *testing.T, r, a string) { os.Truncate(r+".ctl", 0) },
			ok: []string{"dump", "status", "syscalls", "query", "stats", "top", "bpf-run", "bpf-run-jit"}, want: "empty", status: "is empty"},
		{name: "ctl-short", mutate: func(t *testing.T, r, a string) { os.Truncate(r+".ctl", 100) },
			ok: []string{"dump", "status", "syscalls", "query", "stats", "top", "bpf-run", "bpf-run-jit"}},
		{name: "planted-by-another-uid", discover: true, mutate: func(t *testing.T, r, a string) {
			os.Chown(r, nobody, nobody)
			os.Chown(r+".ctl", nobody, nobody)
		}, want: "uid 65534"},
		{name: "syscalls-kind-control", mutate: func(t *testing.T, r, a string) {
			_, e := section(t, r, abi.SecNameSyscalls)
			poke(t, r, e+16, u32le(abi.SecControl))
		}, want: "control section"},
		{name: "text-64GiB", mutate: func(t *testing.T, r, a string) {
			off := relocate(t, r, abi.SecNameInfo, 64<<30, 0)
			poke(t, r, int64(off), bytes.Repeat([]byte("x: not available on this machine, because AAAA\n"), 4096))
		}, ok: []string{"dump", "status", "syscalls", "query", "stats", "top"}},
		{name: "pmu-2^24-rows", mutate: func(t *testing.T, r, a string) {
			s, e := section(t, r, abi.SecNamePMU)
			relocate(t, r, abi.SecNamePMU, uint64(s.ElemSize)<<24, int(s.Size))
			poke(t, r, e+44, u32le(1<<24))
		}, ok: []string{"dump", "status"}},
		{name: "pmu-2^32-1-rows", mutate: func(t *testing.T, r, a string) {
			_, e := section(t, r, abi.SecNamePMU)
			poke(t, r, e+44, u32le(^uint32(0)))
		}, want: "exceed"}, // the section table itself is refused
		{name: "procs-2^24-live-nodes", mutate: func(t *testing.T, r, a string) {
			s, _ := section(t, r, abi.SecNameProcs)
			off := relocate(t, r, abi.SecNameProcs, 64+uint64(s.ElemSize)<<24, abi.HashHeaderSize)
			poke(t, r, int64(off)+4, u32le(1<<24))
			poke(t, r, int64(off)+8, u32le(1<<24))
			_, e := section(t, r, abi.SecNameProcs)
			poke(t, r, e+44, u32le(1<<24))
		}, ok: []string{"dump", "status", "query", "stats", "top"}, status: "exceeds the 65536 this reader reads"},
		{name: "syscalls-2^24-live-nodes", mutate: func(t *testing.T, r, a string) {
			s, _ := section(t, r, abi.SecNameSyscalls)
			off := relocate(t, r, abi.SecNameSyscalls, 64+uint64(s.ElemSize)<<24, abi.HashHeaderSize)
			poke(t, r, int64(off)+4, u32le(1<<24))
			poke(t, r, int64(off)+8, u32le(1<<24))
		}, ok: []string{"dump", "status", "query"}},
		{name: "ncpus-4096", mutate: func(t *testing.T, r, a string) {
			poke(t, r, 28, u32le(abi.MaxCPUs))
		}, want: "CPUs", status: ""},
		{name: "procs-4096-value-slots", mutate: func(t *testing.T, r, a string) {
			// 4 nodes of 4096 slots each (590 KiB a node): a per-process
			// read would copy and sum them all.
			const nslots, stride = 4096, 144
			s, _ := section(t, r, abi.SecNameProcs)
			b, _ := os.ReadFile(r)
			slotsOff := uint64(binary.LittleEndian.Uint32(b[s.Offset+24:]))
			node := (slotsOff + nslots*stride + 63) &^ 63
			off := relocate(t, r, abi.SecNameProcs, abi.HashHeaderSize+4*node, abi.HashHeaderSize)
			for at, v := range map[int64]uint32{4: 4, 8: 4, 12: uint32(node), 16: nslots, 28: stride} {
				poke(t, r, int64(off)+at, u32le(v))
			}
			_, e := section(t, r, abi.SecNameProcs)
			poke(t, r, e+44, u32le(4))
		}, ok: []string{"dump", "status", "query", "stats", "top"}, status: "4096 value slots for 2 CPUs"},
		{name: "procs-count-2^64-1", mutate: func(t *testing.T, r, a string) {
			s, _ := section(t, r, abi.SecNameProcs)
			poke(t, r, int64(s.Offset)+48, u64le(^uint64(0)))
		}, ok: []string{"dump", "status", "query", "stats", "top"}, status: "corrupt count"},
		{name: "future-heartbeat-dead-pid", mutate: func(t *testing.T, r, a string) {
			poke(t, r, 48, u64le(sys.MonotonicNs()+uint64(time.Hour)))
			poke(t, r, 36, u32le(1<<22+1))
		}, ok: []string{"dump", "status", "syscalls"}, want: "stale", status: "in the future"},
		{name: "period-2^62", mutate: func(t *testing.T, r, a string) {
			poke(t, r, 48, u64le(1))
			poke(t, r, 56, u64le(1<<62))
		}, ok: []string{"dump", "status"}, want: "stale"},
		{name: "escapes", mutate: func(t *testing.T, r, a string) {
			b, _ := os.ReadFile(r)
			info, _ := section(t, r, abi.SecNameInfo)
			planted := 0
			// The process name (ESC, OSC, BEL, CR) and every "perf" of
			// the info text (C1 CSI, which survives a C0-only filter).
			plant := func(lo, hi int, word, with string) {
				for i := lo; i < hi; {
					j := bytes.Index(b[i:hi], []byte(word))
					if j < 0 {
						break
					}
					poke(t, r, int64(i+j), []byte(with[:min(len(with), len(word))]))
					planted++
					i += j + len(word)
				}
			}
			plant(0, len(b), "kushm.test", "\x1b]0;\x07\x1b[2J\r")
			plant(int(info.Offset), int(info.Offset+info.Size), "perf", "\xc2\x9b2J")
			if planted < 2 {
				t.Fatalf("planted %d escapes: the base region lacks the process name or the info text", planted)
			}
		}, ok: []string{"dump", "status", "query", "stats", "top"}},
		{name: "trace-head-2^62", mutate: func(t *testing.T, r, a string) {
			s, _ := section(t, a, abi.SecNameTrace)
			poke(t, a, int64(s.Offset), u64le(1<<62))
		}, ok: []string{"trace"}},
	}
}

// commands are the entry points: args for region path (or discovery).
var commands = []struct {
	name      string
	args      func(loc []string, app string) []string
	stopAfter time.Duration // a follower
}{
	{name: "dump", args: func(l []string, _ string) []string { return append(l, "dump") }},
	{name: "dump-image", args: func(l []string, _ string) []string {
		return []string{"dump", "--image", l[len(l)-1]} // a saved copy: the same file, read whole
	}},
	{name: "status", args: func(l []string, _ string) []string { return append(l, "status") }},
	{name: "query", args: func(l []string, _ string) []string {
		return append(l, "query", "cache-misses", "--interval", "50ms", "--top", "3", "--allow-stale")
	}},
	{name: "stats", args: func(l []string, _ string) []string { return append(l, "stats", "--interval", "50ms") }},
	{name: "top", args: func(l []string, _ string) []string {
		return append(l, "top", "--interval", "50ms", "--iterations", "2", "--plain")
	}},
	{name: "syscalls", args: func(l []string, _ string) []string { return append(l, "syscalls") }},
	{name: "syscalls-set", args: func(l []string, _ string) []string { return append(l, "syscalls", "--set", "0=1000") }},
	{name: "bpf-run", args: func(l []string, _ string) []string {
		return append(l, "bpf", "run", "--engine", "interp", "../../userside/bpfrt/testdata/kushm.o", "--ctx-hex", strings.Repeat("00", 200))
	}},
	// the JIT (where there is one): its code reads no region memory;
	// helpers do, in Go, where a fault is an error (bpfrt's Volatile rule)
	{name: "bpf-run-jit", args: func(l []string, _ string) []string {
		return append(l, "bpf", "run", "--engine", jitEngine(), "../../userside/bpfrt/testdata/kushm.o", "--ctx-hex", strings.Repeat("00", 200))
	}},
	{name: "trace", args: func(l []string, app string) []string { return []string{"trace", app} }},
	{name: "trace-f", args: func(l []string, app string) []string { return []string{"trace", "-f", app} }, stopAfter: 700 * time.Millisecond},
}

// setup copies the base into a fixture root and applies c.
func (c hostileCase) setup(t *testing.T, b base) (loc []string, region, app string) {
	root := t.TempDir()
	shmDir := filepath.Join(root, "dev", "shm")
	if err := os.MkdirAll(shmDir, 0o755); err != nil {
		t.Fatal(err)
	}
	region, app = filepath.Join(shmDir, "kushm"), filepath.Join(shmDir, "app")
	copyFile(t, b.region, region)
	copyFile(t, b.region+".ctl", region+".ctl")
	copyFile(t, b.app, app)
	// This machine's possible CPUs, as readers check a region's claim.
	if cpus, err := os.ReadFile("/sys/devices/system/cpu/possible"); err == nil {
		os.MkdirAll(filepath.Join(root, "sys/devices/system/cpu"), 0o755)
		os.WriteFile(filepath.Join(root, "sys/devices/system/cpu/possible"), cpus, 0o644)
	}
	if c.mutate != nil {
		c.mutate(t, region, app)
	}
	if c.discover {
		return []string{"--root", root}, region, app
	}
	return []string{"--root", root, "--region", region}, region, app
}

func TestHostileFilesCLI(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown to another uid)")
	}
	if testing.Short() {
		t.Skip("runs every entry point against every class: about a minute")
	}
	b := makeBase(t)
	runs, errs := 0, 0
	for _, c := range hostileCases(t) {
		t.Run(c.name, func(t *testing.T) {
			loc, _, app := c.setup(t, b)
			for _, cmd := range commands {
				res := runCLI(t, cmd.args(loc, app), cmd.stopAfter, nil)
				runs++
				line := res.check(t)
				mustOK := false
				for _, n := range c.ok {
					mustOK = mustOK || n == cmd.name
				}
				if os.Getenv("KUSHM_HOSTILE_DEBUG") != "" && cmd.name == "dump" {
					t.Logf("dump:\n%s", res.stdout)
				}
				if cmd.name == "status" && c.status != "" && !strings.Contains(res.stdout, c.status) {
					t.Errorf("status does not say %q:\n%s", c.status, res.stdout)
				}
				switch {
				case mustOK && line != "":
					t.Errorf("%s: want success, got %s", cmd.name, line)
				case line != "":
					errs++
					if c.want != "" && !strings.Contains(strings.ToLower(line), strings.ToLower(c.want)) && !strings.HasPrefix(cmd.name, "trace") && cmd.name != "bpf-run" {
						t.Logf("%s: error without %q: %s", cmd.name, c.want, line)
					}
				}
				t.Logf("%-13s %5.2fs %4d MiB exit %d %s", cmd.name, res.elapsed.Seconds(), res.maxRSS>>20, res.code, firstLine(line))
			}
		})
	}
	t.Logf("hostile-file suite: %d cases x %d entry points = %d runs, %d clean errors, 0 crashes", len(hostileCases(t)), len(commands), runs, errs)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 140 {
		s = s[:140] + "..."
	}
	return s
}

// TestShrunkWhileRunning truncates the region (or the application's) while
// each long-lived entry point maps it: each must end by itself with an
// error (or, top, go on waiting for a producer), never with SIGBUS.
func TestShrunkWhileRunning(t *testing.T) {
	if testing.Short() {
		t.Skip("runs long-lived commands")
	}
	b := makeBase(t)
	long := []struct {
		name string
		args func(loc []string, app string) []string
	}{
		{"query", func(l []string, _ string) []string {
			return append(l, "query", "cache-misses", "--interval", "1500ms", "--top", "3")
		}},
		{"stats", func(l []string, _ string) []string { return append(l, "stats", "--interval", "1500ms") }},
		{"top", func(l []string, _ string) []string {
			return append(l, "top", "--interval", "200ms", "--iterations", "12", "--plain")
		}},
		{"trace-f", func(l []string, app string) []string { return []string{"trace", "-f", app} }},
		// the program's kfuncs read the region on every run; the bench
		// stops at the first run that fails
		{"bpf-bench-jit", func(l []string, _ string) []string {
			return append(l, "bpf", "bench", "--engine", jitEngine(), "-n", "50000000", "../../userside/bpfrt/testdata/kushm.o", "--ctx-hex", strings.Repeat("00", 200))
		}},
	}
	for _, lc := range long {
		t.Run(lc.name, func(t *testing.T) {
			loc, region, app := hostileCase{}.setup(t, b)
			res := runCLI(t, lc.args(loc, app), 0, func() {
				time.Sleep(700 * time.Millisecond)
				os.Truncate(region, abi.HeaderAreaSize)
				os.Truncate(app, abi.HeaderAreaSize)
			})
			line := res.check(t)
			if lc.name == "bpf-bench-jit" {
				// the failed run is the engine's row: one line, naming the file
				for _, l := range strings.Split(res.stdout, "\n") {
					if strings.HasPrefix(l, jitEngine()+" ") {
						line = l
					}
				}
				if res.code != 0 || !strings.Contains(line, region+" shrank") || !strings.Contains(line, shm.ErrChanged.Error()) {
					t.Errorf("want the %s row to say %s shrank, got %q (exit %d, stdout %q)", jitEngine(), region, line, res.code, res.stdout)
				}
				t.Logf("%s: %.2fs: %s", lc.name, res.elapsed.Seconds(), line)
				return
			}
			if lc.name != "top" && !strings.Contains(line, "shrank") {
				t.Errorf("want an error saying the file shrank, got %q (exit %d)", line, res.code)
			}
			t.Logf("%s: %.2fs exit %d: %s", lc.name, res.elapsed.Seconds(), res.code, firstLine(line+res.stdout))
		})
	}
}

// TestHostileFilesAPI: the Go API on every class: Open, sample, list
// processes and status, without a panic; after the file shrinks under an
// open Client, reads return shm.ErrChanged.
func TestHostileFilesAPI(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown to another uid)")
	}
	b := makeBase(t)
	for _, c := range hostileCases(t) {
		t.Run(c.name, func(t *testing.T) {
			loc, region, _ := c.setup(t, b)
			o := client.Options{Root: loc[1], AllowStale: true}
			if !c.discover {
				o.Path = region
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				cl, err := client.Open(o)
				if err != nil {
					t.Logf("open: %v", err)
					return
				}
				defer cl.Close()
				if _, err := cl.SamplePMU(); err != nil {
					t.Logf("sample: %v", err)
				}
				if ps, err := cl.Processes(); err == nil {
					for _, p := range ps {
						if strings.ContainsAny(p.Comm, "\x1b\a\r") {
							t.Errorf("comm %q not sanitised", p.Comm)
						}
					}
				}
				st := cl.Status()
				for _, u := range st.Unavailable {
					if strings.ContainsAny(u.What+u.Source+u.Cause, "\x1b\a\r") {
						t.Errorf("info %q not sanitised", u)
					}
				}
				if st.Processes < 0 {
					t.Errorf("status: %d processes", st.Processes)
				}
			}()
			select {
			case <-done:
			case <-time.After(cliLimit):
				t.Fatal("the Go API hangs")
			}
		})
	}
	t.Run("shrunk-under-client", func(t *testing.T) {
		_, region, _ := hostileCase{}.setup(t, b)
		cl, err := client.Open(client.Options{Path: region})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if _, err := cl.SamplePMU(); err != nil {
			t.Fatal(err)
		}
		os.Truncate(region, abi.HeaderAreaSize)
		if _, err := cl.SamplePMU(); !errors.Is(err, shm.ErrChanged) {
			t.Errorf("sample after truncation: %v", err)
		}
		if _, err := cl.Processes(); !errors.Is(err, shm.ErrChanged) {
			t.Errorf("processes after truncation: %v", err)
		}
		if _, err := cl.Syscalls(); !errors.Is(err, shm.ErrChanged) {
			t.Errorf("syscalls after truncation: %v", err)
		}
		if err := cl.Dump(io.Discard, dump.Options{}); !errors.Is(err, shm.ErrChanged) {
			t.Errorf("dump after truncation: %v", err)
		}
		if d := cl.Decode(8); len(d.Sections) != 1 || !strings.Contains(d.Sections[0].Error, "shrank") {
			t.Errorf("decode after truncation: %+v", d)
		}
		if st := cl.Status(); !st.Stale || !strings.Contains(st.StaleReason, "shrank") {
			t.Errorf("status after truncation: %+v", st)
		}
		err = cl.Guard(func() error {
			for cpu := 0; cpu < cl.NCPUs(); cpu++ {
				cl.Counter(cpu, 0)
			}
			return nil
		})
		if !errors.Is(err, shm.ErrChanged) {
			t.Errorf("guarded counters after truncation: %v", err)
		}
	})
}

var _ = fmt.Sprint

// TestTraceWindow: the reader jumps forward when head - position exceeds
// the ring's count (docs/region-format.md §10), and never reads more than
// a pass's worth, whatever the head.
func TestTraceWindow(t *testing.T) {
	w := traceWindow{count: 8}
	for _, c := range []struct{ from, head, max, want, skipped uint64 }{
		{0, 5, 1 << 16, 0, 0},
		{0, 8, 1 << 16, 0, 0},
		{0, 9, 1 << 16, 1, 1},
		{3, 1 << 62, 1 << 16, 1<<62 - 8, 1<<62 - 8 - 3},
		{10, 4, 1 << 16, 4, 0}, // the head went back: start there
	} {
		got, skipped := w.start(c.from, c.head, c.max)
		if got != c.want || skipped != c.skipped {
			t.Errorf("start(%d, %d) = %d, %d skipped; want %d, %d", c.from, c.head, got, skipped, c.want, c.skipped)
		}
	}
	big := traceWindow{count: 1 << 40}
	if got, _ := big.start(0, 1<<41, 1<<16); got != 1<<41-1<<16 {
		t.Errorf("a ring claiming 2^40 records: one pass starts at %d, want head - 2^16", got)
	}
}

// TestServeUnderControlAttack: `kushm serve` (a separate process) keeps
// running while uid 65534, in the control file's group, truncates, grows,
// floods and tries to replace its control file in a sticky directory; a
// reader opens the region, control section present, after each attack.
func TestServeUnderControlAttack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to act as another uid")
	}
	if testing.Short() {
		t.Skip("runs the daemon")
	}
	dir, err := os.MkdirTemp("", "kushm-serve-hostile")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o777|os.ModeSticky)
	path := filepath.Join(dir, "kushm")
	ctl := path + ".ctl"
	args := []string{"serve", "--region", path, "--interval", "50ms", "--group", "65534", "--uid", "-2",
		"--no-gops", "--no-msr", "--cgroup-mode", "off"}
	steps := []string{
		`truncate -s 0 "$CTL"`,
		`truncate -s 100 "$CTL"`,
		`truncate -s 1M "$CTL"`,
		`mkfifo "$CTL.x" && mv -f "$CTL.x" "$CTL"; rm -f "$CTL.x"`,
		`for i in 1 2 3 4 5 6 7 8; do head -c 8192 /dev/urandom | dd of="$CTL" conv=notrunc status=none; done`,
		`i=0; while [ $i -lt 100 ]; do truncate -s 0 "$CTL"; truncate -s 8192 "$CTL"; i=$((i+1)); done`,
	}
	var failures []string
	res := runCLI(t, args, 8*time.Second, func() {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if r, err := shm.Open(path, shm.Options{}); err == nil {
				r.Close()
				break
			} else if time.Now().After(deadline) {
				failures = append(failures, fmt.Sprintf("serve never published a live region: %v", err))
				return
			}
		}
		for _, step := range steps {
			cmd := exec.Command("/bin/sh", "-c", step)
			cmd.Env = []string{"CTL=" + ctl, "PATH=/usr/bin:/bin"}
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
			cmd.Run()
			time.Sleep(400 * time.Millisecond)
			r, err := shm.Open(path, shm.Options{CheckOwner: true})
			if err != nil {
				failures = append(failures, fmt.Sprintf("after %q: %v", step, err))
				continue
			}
			if s, err := r.Section(abi.SecNameControl); err != nil || s.Missing {
				failures = append(failures, fmt.Sprintf("after %q: control section missing: %v %s", step, err, s.MissingReason))
			}
			r.Close()
		}
	})
	res.check(t)
	if !res.killedByUs {
		t.Errorf("kushm serve exited by itself (status %d) under the attacks:\n%s", res.code, res.stderr)
	}
	for _, f := range failures {
		t.Error(f)
	}
	t.Logf("serve log:\n%s", res.stderr)
}

// TestServeRefusesSquatterAsUser: a daemon run as an unprivileged user
// (uid 65534) meets a FIFO another user (root here) planted at its path in
// a shared sticky directory: it cannot rename over it, and says so in one
// line naming the squatter, instead of hanging or clobbering.
func TestServeRefusesSquatterAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run as another uid")
	}
	if testing.Short() {
		t.Skip("runs the daemon")
	}
	bin, err := os.MkdirTemp("", "kushm-bin")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(bin)
	os.Chmod(bin, 0o755)
	exe := filepath.Join(bin, "kushm")
	copyFile(t, os.Args[0], exe)
	os.Chmod(exe, 0o755)
	dir, err := os.MkdirTemp("", "kushm-squat")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o777|os.ModeSticky)
	path := filepath.Join(dir, "kushm")
	if err := syscall.Mkfifo(path, 0o666); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cliLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "serve", "--region", path, "--interval", "50ms", "--uid", "-2",
		"--no-gops", "--no-msr", "--cgroup-mode", "off")
	cmd.Env = append(os.Environ(), cliEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("serve hangs on a squatter's FIFO:\n%s", out)
	}
	line := strings.TrimSpace(string(out))
	if i := strings.LastIndex(line, "\n"); i >= 0 {
		line = line[i+1:]
	}
	if err == nil || !strings.Contains(line, "FIFO owned by uid 0") || !strings.Contains(line, path) {
		t.Fatalf("serve as uid %d over root's FIFO: %v\n%s", nobody, err, out)
	}
	if st, err := os.Lstat(path); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("the squatter's file was touched: %v %v", st, err)
	}
	t.Log(line)
}

// jitEngine is the --engine naming the JIT where there is one, else the
// interpreter.
func jitEngine() string {
	if runtime.GOARCH == "amd64" && runtime.GOOS == "linux" {
		return "jit"
	}
	return "interp"
}
