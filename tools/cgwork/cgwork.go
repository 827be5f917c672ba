// Package cgwork is the known work of the per-cgroup tests: a process
// that makes a given number of page faults, context switches (a pipe
// ping-pong between two threads) and on-CPU time, started directly in a
// cgroup v2 (clone3 CLONE_INTO_CGROUP). Test support only.
package cgwork

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/kushm/kushm/internal/sys"
	"github.com/kushm/kushm/pmu"
)

// Env is the environment variable a test binary checks (Main) to run
// the work instead of its tests: "pages,pingpongs,spin_ms".
const Env = "KUSHM_CGWORK"

// Spec is one piece of work.
type Spec struct {
	Pages     int           // fresh anonymous pages touched: at least this many page faults
	PingPongs int           // pipe round trips between two threads: at least this many context switches
	Spin      time.Duration // on-CPU time of a busy loop
	// Wait: the process waits for a byte on its stdin before working
	// (StartWaiting), so a test can move it first.
	Wait bool
	// Pin: when > 0, the work's threads run on CPU Pin-1 only (the
	// faults, the ping-pong, the spin): its counts all land on that CPU.
	Pin int
	// Migrations: before the rest, the work's thread is moved between
	// two online CPUs at least this many times (Migrate): at least this
	// many CPU migrations.
	Migrations int
}

func (s Spec) String() string {
	w := 0
	if s.Wait {
		w = 1
	}
	return fmt.Sprintf("%d,%d,%d,%d,%d,%d", s.Pages, s.PingPongs, s.Spin.Milliseconds(), w, s.Pin, s.Migrations)
}

// Main runs the work and exits when Env is set (or is a side of a
// Pair and exits when PairEnv is); call it first in TestMain.
func Main() {
	if v := os.Getenv(PairEnv); v != "" {
		os.Exit(pairMain(v))
	}
	v := os.Getenv(Env)
	if v == "" {
		return
	}
	var s Spec
	var ms, w int
	if _, err := fmt.Sscanf(v, "%d,%d,%d,%d,%d,%d", &s.Pages, &s.PingPongs, &ms, &w, &s.Pin, &s.Migrations); err != nil {
		fmt.Fprintln(os.Stderr, "cgwork:", err)
		os.Exit(2)
	}
	s.Spin = time.Duration(ms) * time.Millisecond
	if w != 0 {
		var b [1]byte
		if _, err := os.Stdin.Read(b[:]); err != nil {
			fmt.Fprintln(os.Stderr, "cgwork: wait:", err)
			os.Exit(2)
		}
	}
	if err := Do(s); err != nil {
		fmt.Fprintln(os.Stderr, "cgwork:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

var sink byte

// Do runs s in this process.
func Do(s Spec) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if s.Migrations > 0 {
		if err := Migrate(s.Migrations); err != nil {
			return err
		}
	}
	if s.Pin > 0 {
		unpin, err := pmu.PinToCPU(s.Pin - 1)
		if err != nil {
			return err
		}
		defer unpin()
	}
	if s.Pages > 0 {
		if err := Fault(s.Pages); err != nil {
			return err
		}
	}
	if s.PingPongs > 0 {
		if err := PingPongOn(s.PingPongs, s.Pin-1); err != nil {
			return err
		}
	}
	// Spin on CPU time, not wall time: on a loaded machine the thread
	// is preempted, and the test asserts the on-CPU time.
	end := threadCPU() + s.Spin
	for threadCPU() < end {
	}
	return nil
}

// Fault maps n fresh anonymous pages and writes one byte to each: n
// page faults in the calling thread, one per page. The range is marked
// MADV_NOHUGEPAGE: with transparent huge pages always on (Debian's
// kernels), a range that the kernel merged into a neighbouring anonymous
// mapping could otherwise be served by one 2 MiB fault (seen in the 6.12
// guest: 256 pages, 113 faults).
func Fault(n int) error {
	pg := os.Getpagesize()
	b, err := syscall.Mmap(-1, 0, n*pg, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return err
	}
	defer syscall.Munmap(b)
	// EINVAL: a kernel without transparent huge pages (PREEMPT_RT),
	// where every page faults on its own anyway.
	const madvNoHugepage = 15 // MADV_NOHUGEPAGE
	if err := syscall.Madvise(b, madvNoHugepage); err != nil && err != syscall.EINVAL {
		return fmt.Errorf("madvise(MADV_NOHUGEPAGE): %w", err)
	}
	for i := 0; i < len(b); i += pg {
		b[i] = 1
	}
	sink = b[len(b)-1]
	return nil
}

// Migrate moves the calling thread between the first two online CPUs
// at least n times, then gives it its former affinity back: it pins the
// thread to the second CPU and back to the first with
// sched_setaffinity, which returns once the thread runs on a CPU of the
// new mask (the kernel's stopper moved it there), and checks each move
// with getcpu(2). Each move is a migration (set_task_cpu to another
// CPU); the first pin can add one more.
func Migrate(n int) error {
	cpus, err := pmu.OnlineCPUs("")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if len(cpus) < 2 {
		return fmt.Errorf("migrate: %d online CPU, need 2", len(cpus))
	}
	a, b := cpus[0], cpus[1]
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	restore, err := pmu.PinToCPU(a)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer restore()
	if got := sys.CurrentCPU(); got != a {
		return fmt.Errorf("migrate: pinned to cpu %d, running on %d", a, got)
	}
	for moved := 0; moved < n; moved += 2 {
		back, err := pmu.PinToCPU(b) // a -> b
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		got := sys.CurrentCPU()
		back() // b -> a
		if got != b {
			return fmt.Errorf("migrate: pinned to cpu %d, running on %d", b, got)
		}
		if got := sys.CurrentCPU(); got != a {
			return fmt.Errorf("migrate: pinned back to cpu %d, running on %d", a, got)
		}
	}
	return nil
}

// threadCPU is CLOCK_THREAD_CPUTIME_ID.
func threadCPU() time.Duration {
	var ts syscall.Timespec
	const clockThreadCPUTime = 3
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}

// PingPong bounces one byte between two OS threads over two pipes: each
// round trip blocks each thread once (two switches at least).
func PingPong(n int) error { return PingPongOn(n, -1) }

// PingPongOn is PingPong with both threads pinned to cpu (cpu < 0: not
// pinned), as `taskset -c N perf bench sched pipe` runs: each round trip
// is then exactly two context switches.
func PingPongOn(n, cpu int) error {
	var a, b [2]int
	if err := syscall.Pipe(a[:]); err != nil {
		return err
	}
	if err := syscall.Pipe(b[:]); err != nil {
		return err
	}
	defer func() {
		for _, fd := range []int{a[0], a[1], b[0], b[1]} {
			syscall.Close(fd)
		}
	}()
	done := make(chan error, 1)
	go func() { done <- bounce(n, cpu, a[0], b[1], false) }()
	if err := bounce(n, cpu, b[0], a[1], true); err != nil {
		return err
	}
	return <-done
}

// bounce is one side of the ping-pong, on a locked thread (pinned to cpu
// when cpu >= 0): n times one byte written to out and read from in, the
// write first when writeFirst.
func bounce(n, cpu, in, out int, writeFirst bool) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if cpu >= 0 {
		if unpin, err := pmu.PinToCPU(cpu); err == nil {
			defer unpin()
		}
	}
	buf := []byte{0}
	for i := 0; i < n; i++ {
		if writeFirst {
			if _, err := syscall.Write(out, buf); err != nil {
				return err
			}
		}
		if _, err := syscall.Read(in, buf); err != nil {
			return err
		}
		if !writeFirst {
			if _, err := syscall.Write(out, buf); err != nil {
				return err
			}
		}
	}
	return nil
}

// Run runs the test binary's Main with s inside cgroup directory dir
// (the child starts there: no count of it is charged elsewhere) and
// waits for it.
func Run(dir string, s Spec) error {
	cmd, err := Start(dir, s)
	if err != nil {
		return err
	}
	return cmd.Wait()
}

// Proc is a started piece of work.
type Proc struct {
	Cmd *exec.Cmd
	go_ io.WriteCloser
}

// Go lets a process started with Spec.Wait start working.
func (p *Proc) Go() error {
	_, err := p.go_.Write([]byte{1})
	p.go_.Close()
	return err
}

// Wait waits for the process to finish.
func (p *Proc) Wait() error { return p.Cmd.Wait() }

// StartWaiting starts s (with Wait set) in dir: the process exists in
// the cgroup but works only after Go.
func StartWaiting(dir string, s Spec) (*Proc, error) {
	s.Wait = true
	cmd, w, err := start(dir, s, true)
	if err != nil {
		return nil, err
	}
	return &Proc{Cmd: cmd, go_: w}, nil
}

// Start starts the work in dir and returns the running command.
func Start(dir string, s Spec) (*exec.Cmd, error) {
	cmd, _, err := start(dir, s, false)
	return cmd, err
}

func start(dir string, s Spec, wait bool) (*exec.Cmd, io.WriteCloser, error) {
	cmd, f, err := command(dir, Env+"="+s.String())
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	cmd.Stdout = os.Stderr
	var w io.WriteCloser
	if wait {
		if w, err = cmd.StdinPipe(); err != nil {
			return nil, nil, err
		}
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start work in %s: %w", dir, err)
	}
	return cmd, w, nil
}

// command is the test binary's Main with env (NAME=value) set, to be
// started in cgroup directory dir; f is that directory, to close once
// the command has started.
func command(dir, env string) (cmd *exec.Cmd, f *os.File, err error) {
	if f, err = os.Open(dir); err != nil {
		return nil, nil, fmt.Errorf("start work in %s: %w", dir, err)
	}
	cmd = exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	return cmd, f, nil
}

// Move moves process pid into cgroup directory dir.
func Move(dir string, pid int) error {
	return os.WriteFile(dir+"/cgroup.procs", []byte(strconv.Itoa(pid)), 0o644)
}

// Mount2 returns the cgroup2 hierarchy's directory, mounting one at
// /sys/fs/cgroup when none is mounted (the qemu guest of make vmtest
// mounts none).
func Mount2() (string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		for i := 6; i+1 < len(f); i++ {
			if f[i] == "-" && f[i+1] == "cgroup2" {
				return f[4], nil
			}
		}
	}
	if err := syscall.Mount("none", "/sys/fs/cgroup", "cgroup2", 0, ""); err != nil {
		return "", fmt.Errorf("mount cgroup2 at /sys/fs/cgroup: %w", err)
	}
	return "/sys/fs/cgroup", nil
}

// RunTrue runs /bin/true in cgroup directory dir (a short process whose
// only switches are its start and exit).
func RunTrue(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command("/bin/true")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	return cmd.Run()
}

// Exclusive takes a lock shared by every test binary that makes and
// removes cgroups and measures them (`go test ./...` runs packages in
// parallel): a test that sums every cgroup's counts against the per-CPU
// totals cannot see the counts of a cgroup another package's test
// created and removed meanwhile. Held until unlock; it waits for the
// holder.
func Exclusive() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "kushm-cgwork.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cgroup test lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("cgroup test lock: %w", err)
	}
	return func() { f.Close() }, nil
}
