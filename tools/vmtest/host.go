package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kushm/kushm/internal/sys"
)

// ErrNoKernel: the kernel of a series is not prepared (run
// scripts/vm/setup.sh).
var ErrNoKernel = errors.New("kernel not prepared (run scripts/vm/setup.sh)")

// Kernel is one prepared kernel, as scripts/vm/setup.sh describes it in
// CacheDir()/SERIES.env.
type Kernel struct {
	Series  string // "6.1", "6.12"
	KVer    string // uname -r, e.g. 6.1.0-56-cloud-amd64
	Vmlinuz string // the image to boot
	KDir    string // its headers (kbuild directory)
	CC      string // the compiler its kbuild was configured with
}

// CacheDir is where setup.sh caches kernels and Run builds modules:
// $KUSHM_VM_CACHE, else $XDG_CACHE_HOME/kushm/vm, else ~/.cache/kushm/vm.
func CacheDir() string {
	if d := os.Getenv("KUSHM_VM_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "kushm", "vm")
	}
	h, _ := os.UserHomeDir()
	return filepath.Join(h, ".cache", "kushm", "vm")
}

// LoadKernel reads the description of a prepared kernel series.
func LoadKernel(cache, series string) (Kernel, error) {
	k := Kernel{Series: series}
	b, err := os.ReadFile(filepath.Join(cache, series+".env"))
	if err != nil {
		return k, fmt.Errorf("kernel %s: %w", series, ErrNoKernel)
	}
	for _, l := range strings.Split(string(b), "\n") {
		key, v, ok := strings.Cut(strings.TrimSpace(l), "=")
		if !ok || strings.HasPrefix(key, "#") {
			continue
		}
		switch key {
		case "KVER":
			k.KVer = v
		case "VMLINUZ":
			k.Vmlinuz = v
		case "KDIR":
			k.KDir = v
		case "CC":
			k.CC = v
		}
	}
	if k.KVer == "" || k.Vmlinuz == "" || k.KDir == "" {
		return k, fmt.Errorf("kernel %s: incomplete %s.env: %w", series, series, ErrNoKernel)
	}
	for _, p := range []string{k.Vmlinuz, filepath.Join(k.KDir, "Makefile")} {
		if _, err := os.Stat(p); err != nil {
			return k, fmt.Errorf("kernel %s: %w: %w", series, err, ErrNoKernel)
		}
	}
	return k, nil
}

// Options configure Run.
type Options struct {
	Repo     string        // repository root (contains go.mod and kmod/)
	Kernel   Kernel        // the kernel to boot
	Packages []string      // Go packages to test in the guest
	Run      string        // -test.run pattern (default ^TestVM)
	Timeout  time.Duration // whole boot-to-poweroff limit (default 8m)
	Memory   string        // qemu -m (default 1024)
	CPUs     int           // qemu -smp (default 2)
	Work     string        // work directory (default: a fresh CacheDir()/work/KVER-*, removed after a passing run)
	Log      io.Writer     // live console and progress (nil: discard)
	Go       string        // go command (default "go")
	// Build is how kushm.ko is built: "make" (default: make -C kmod
	// against Kernel.KDir) or "dkms" (dkms add + dkms build of kmod/ in
	// private DKMS trees, exactly the user's path; BuildModuleDKMS).
	Build string

	// Prebuilt, when set, shares the test binaries between Runs.
	Prebuilt *Prebuilt

	built string // the module file as built (compressed by DKMS), set by Run
}

// Result is what a run brings back from the guest.
type Result struct {
	Kernel     Kernel
	Packages   []PackageResult
	Dmesg      string
	Complaints []string // dmesg lines that fail the run
	// BootComplaints are complaints the kernel logged while it booted,
	// before /init started (e.g. an RCU stall of a TCG guest starved by
	// a loaded host): no kushm code had run yet, so they are reported,
	// not failed on.
	BootComplaints []string
	Done           bool // /init reached its end marker
	Build          time.Duration
	Boot           time.Duration // qemu start to the first test starting
	Total          time.Duration
	ConsoleLog     string // path of the full console log
}

// Failed returns why the run failed, or nil.
func (r *Result) Failed() error {
	var errs []error
	if !r.Done {
		errs = append(errs, errors.New("the guest did not reach its end marker (crash, hang or timeout: see "+r.ConsoleLog+")"))
	}
	for _, p := range r.Packages {
		if !p.Passed() {
			errs = append(errs, fmt.Errorf("%s: exit %d", p.Name, p.Exit))
		}
	}
	for _, c := range r.Complaints {
		errs = append(errs, fmt.Errorf("dmesg: %s", c))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("kernel %s (%s): %w", r.Kernel.Series, r.Kernel.KVer, errors.Join(errs...))
}

func (o *Options) defaults() {
	if o.Run == "" {
		o.Run = "^TestVM"
	}
	if o.Timeout == 0 {
		o.Timeout = 8 * time.Minute
	}
	if o.Memory == "" {
		o.Memory = "1024"
	}
	if o.CPUs == 0 {
		o.CPUs = 2
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Go == "" {
		o.Go = "go"
	}
}

// ReadPackages reads a packages file: one import path a line, # comments.
func ReadPackages(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read packages: %w", err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		l, _, _ = strings.Cut(l, "#")
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out, nil
}

func (o *Options) cmd(ctx context.Context, dir string, env []string, name string, args ...string) error {
	c := exec.CommandContext(ctx, name, args...)
	c.Dir = dir
	c.Env = append(os.Environ(), env...)
	var buf bytes.Buffer
	c.Stdout, c.Stderr = &buf, &buf
	if err := c.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, buf.String())
	}
	return nil
}

// syncTree copies the files of src into dst, rewriting only those whose
// contents changed so that make stays incremental, and removing files of
// dst that src no longer has (build products, recognised by extension,
// are kept).
func syncTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		t := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(t, 0o755)
		}
		if !d.Type().IsRegular() || isBuildProduct(rel) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if old, err := os.ReadFile(t); err == nil && bytes.Equal(old, b) {
			return nil
		}
		return os.WriteFile(t, b, 0o644)
	})
}

func isBuildProduct(rel string) bool {
	base := filepath.Base(rel)
	for _, s := range []string{".o", ".ko", ".mod", ".mod.c", ".cmd", ".symvers", ".order", ".a"} {
		if strings.HasSuffix(base, s) {
			return true
		}
	}
	return strings.HasPrefix(base, ".")
}

// BuildModule builds kmod/ for k in a per-kernel copy under the cache and
// returns the path of kushm.ko.
func BuildModule(ctx context.Context, repo string, k Kernel, goCmd string) (string, error) {
	dir := filepath.Join(CacheDir(), "build", k.KVer, "kmod")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// One build per kernel at a time (concurrent vmtest runs share it).
	lock, err := os.OpenFile(filepath.Join(dir, "..", "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := sys.LockExclusive(int(lock.Fd())); err != nil {
		return "", fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := syncTree(filepath.Join(repo, "kmod"), dir); err != nil {
		return "", fmt.Errorf("copy kmod for %s: %w", k.KVer, err)
	}
	args := []string{"-C", dir, "KDIR=" + k.KDir, "KVER=" + k.KVer}
	if k.CC != "" {
		args = append(args, "CC="+k.CC)
	}
	o := Options{}
	env := []string{"KUSHM_REPO=" + repo}
	if err := o.cmd(ctx, repo, env, "make", args...); err != nil {
		return "", fmt.Errorf("build kushm.ko for %s: %w", k.KVer, err)
	}
	// Copy the result out so the next build cannot change it under us.
	ko, err := os.ReadFile(filepath.Join(dir, "kushm.ko"))
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "..", fmt.Sprintf("kushm-%d.ko", os.Getpid()))
	if err := os.WriteFile(out, ko, 0o644); err != nil {
		return "", err
	}
	return out, nil
}

// BuildModuleDKMS builds kmod/ for k the way `dkms build` does on a user's
// machine (kmod/dkms.conf's build step, against /lib/modules/KVER/build),
// in private source and DKMS trees under the cache, and returns the path
// of a copy of the module DKMS produced (kushm.ko, or kushm.ko.xz when the
// kernel compresses its modules) and of its uncompressed form (the same
// path when DKMS did not compress). Needs root and dkms.
func BuildModuleDKMS(ctx context.Context, repo string, k Kernel) (built, ko string, err error) {
	conf, err := os.ReadFile(filepath.Join(repo, "kmod", "dkms.conf"))
	if err != nil {
		return "", "", err
	}
	name, ver := "kushm", ""
	for _, l := range strings.Split(string(conf), "\n") {
		if v, ok := strings.CutPrefix(l, "PACKAGE_VERSION="); ok {
			ver = strings.Trim(v, "\" ")
		}
	}
	if ver == "" {
		return "", "", fmt.Errorf("dkms build for %s: no PACKAGE_VERSION in kmod/dkms.conf", k.KVer)
	}
	base := filepath.Join(CacheDir(), "dkms")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", "", err
	}
	tmp, err := os.MkdirTemp(base, k.KVer+"-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(tmp)
	src, tree := filepath.Join(tmp, "src"), filepath.Join(tmp, "tree")
	if err := syncTree(filepath.Join(repo, "kmod"), filepath.Join(src, name+"-"+ver)); err != nil {
		return "", "", fmt.Errorf("dkms build for %s: copy kmod: %w", k.KVer, err)
	}
	if err := os.Chmod(filepath.Join(src, name+"-"+ver, "dkms-make.sh"), 0o755); err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(tree, 0o755); err != nil {
		return "", "", err
	}
	o := Options{}
	trees := []string{"-m", name, "-v", ver, "--sourcetree", src, "--dkmstree", tree}
	if err := o.cmd(ctx, repo, nil, "dkms", append([]string{"add"}, trees...)...); err != nil {
		return "", "", fmt.Errorf("dkms add for %s: %w", k.KVer, err)
	}
	if err := o.cmd(ctx, repo, nil, "dkms", append([]string{"build", "-k", k.KVer}, trees...)...); err != nil {
		if log, rerr := os.ReadFile(filepath.Join(tree, name, ver, k.KVer, "x86_64", "log", "make.log")); rerr == nil {
			err = fmt.Errorf("%w\nmake.log:\n%s", err, log)
		} else if log, rerr := os.ReadFile(filepath.Join(tree, name, ver, "build", "make.log")); rerr == nil {
			err = fmt.Errorf("%w\nmake.log:\n%s", err, log)
		}
		return "", "", fmt.Errorf("dkms build for %s: %w", k.KVer, err)
	}
	m, _ := filepath.Glob(filepath.Join(tree, name, ver, k.KVer, "*", "module", name+".ko*"))
	if len(m) != 1 {
		return "", "", fmt.Errorf("dkms build for %s: want one %s.ko* in the DKMS tree, found %v", k.KVer, name, m)
	}
	out := filepath.Join(base, fmt.Sprintf("%s-%d-%s", k.KVer, os.Getpid(), filepath.Base(m[0])))
	b, err := os.ReadFile(m[0])
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return "", "", err
	}
	if !strings.HasSuffix(out, ".xz") {
		return out, out, nil
	}
	plain := strings.TrimSuffix(out, ".xz")
	var buf bytes.Buffer
	c := exec.CommandContext(ctx, "xz", "-dc", out)
	c.Stdout = &buf
	if err := c.Run(); err != nil {
		return "", "", fmt.Errorf("dkms build for %s: xz -d %s: %w", k.KVer, out, err)
	}
	if err := os.WriteFile(plain, buf.Bytes(), 0o644); err != nil {
		return "", "", err
	}
	return out, plain, nil
}

// Prebuilt shares the kernel-independent part of a run (the test binaries
// and the CLI) between the Runs of one invocation: the first Run builds
// it into Dir, the others reuse it. Not safe for concurrent Runs.
type Prebuilt struct {
	Dir   string // where the binaries go; the caller removes it
	built bool
	bins  []testBin
	cli   string
}

// userland builds (or reuses, see Prebuilt) the test binaries and the CLI.
func (o *Options) userland(ctx context.Context) ([]testBin, string, error) {
	if p := o.Prebuilt; p != nil && p.built {
		fmt.Fprintf(o.Log, "vmtest %s: test binaries of the first kernel reused\n", o.Kernel.Series)
		return p.bins, p.cli, nil
	}
	dir := filepath.Join(o.Work, "bin")
	if o.Prebuilt != nil {
		dir = o.Prebuilt.Dir
	}
	fmt.Fprintf(o.Log, "vmtest %s: building test binaries\n", o.Kernel.Series)
	bins, err := o.buildTests(ctx, dir)
	if err != nil {
		return nil, "", err
	}
	cli := filepath.Join(dir, "kushm")
	if err := o.cmd(ctx, o.Repo, []string{"CGO_ENABLED=0"}, o.Go, "build", "-o", cli, "./cmd/kushm"); err != nil {
		return nil, "", fmt.Errorf("build kushm: %w", err)
	}
	if o.Prebuilt != nil {
		o.Prebuilt.bins, o.Prebuilt.cli, o.Prebuilt.built = bins, cli, true
	}
	return bins, cli, nil
}

type testBin struct {
	name, bin, dir string
}

func (o *Options) buildTests(ctx context.Context, out string) ([]testBin, error) {
	env := []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64"}
	var bins []testBin
	for _, p := range o.Packages {
		name := strings.NewReplacer("/", "_", ".", "_").Replace(strings.TrimPrefix(p, "github.com/kushm/kushm/"))
		bin := filepath.Join(out, name+".test")
		_ = os.Remove(bin)
		if err := o.cmd(ctx, o.Repo, env, o.Go, "test", "-c", "-o", bin, p); err != nil {
			return nil, fmt.Errorf("build tests of %s: %w", p, err)
		}
		if _, err := os.Stat(bin); err != nil {
			continue // no test files
		}
		var dir bytes.Buffer
		c := exec.CommandContext(ctx, o.Go, "list", "-f", "{{.Dir}}", p)
		c.Dir, c.Stdout = o.Repo, &dir
		if err := c.Run(); err != nil {
			return nil, fmt.Errorf("go list %s: %w", p, err)
		}
		bins = append(bins, testBin{name: name, bin: bin, dir: strings.TrimSpace(dir.String())})
	}
	return bins, nil
}

const maxTestdata = 16 << 20

func (o *Options) initScript(names []string) string {
	var b strings.Builder
	b.WriteString(`#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmpfs /tmp
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mkdir -p /sys/fs/bpf && mount -t bpf bpf /sys/fs/bpf 2>/dev/null
ulimit -l unlimited 2>/dev/null
`)
	build := o.Build
	if build == "" {
		build = "make"
	}
	fmt.Fprintf(&b, "export %s=1 %s=/lib/kushm/kushm.ko %s=%s %s=%s HOME=/tmp TMPDIR=/tmp GOTRACEBACK=all\n",
		EnvGuest, EnvModule, EnvSeries, o.Kernel.Series, EnvBuild, build)
	b.WriteString("echo \"KUSHM-VMTEST: KERNEL $(uname -r) ncpus $(nproc) uptime $(cut -d' ' -f1 /proc/uptime)\"\nrc=0\n")
	// The tests' own limit fires first, so a hung test prints its
	// goroutines before qemu is killed.
	timeout := int(o.Timeout.Seconds()) - 45
	if timeout < 30 {
		timeout = 30
	}
	for _, n := range names {
		fmt.Fprintf(&b, `echo "KUSHM-VMTEST: BEGIN %[1]s"
(cd /tests/%[1]s && ./%[1]s.test -test.v -test.count=1 -test.run '%[2]s' -test.timeout %[3]ds) 2>&1
r=$?
echo "KUSHM-VMTEST: END %[1]s rc=$r"
[ $r -eq 0 ] || rc=1
`, n, strings.ReplaceAll(o.Run, "'", ""), timeout)
	}
	b.WriteString(`sync
echo "` + markDmesgBegin + `"
dmesg
echo "` + markDmesgEnd + `"
echo "KUSHM-VMTEST: DONE rc=$rc"
poweroff -f
`)
	return b.String()
}

func (o *Options) initramfs(path, ko, cli string, bins []testBin) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	c := newCPIO(w)
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "etc", "root", "lib/kushm", "tests"} {
		c.mkdirAll(d)
	}
	c.chardev("dev/console", 0o600, 5, 1)
	c.chardev("dev/null", 0o666, 1, 3)
	bb, err := exec.LookPath("busybox")
	if err != nil {
		bb = "/bin/busybox"
	}
	c.copyFile("bin/busybox", bb)
	c.copyFile("lib/kushm/kushm.ko", ko)
	if o.built != ko && o.built != "" {
		// What DKMS installs on a kernel that compresses its modules.
		c.copyFile("lib/kushm/"+filepath.Base(o.built)[strings.LastIndex(filepath.Base(o.built), "kushm.ko"):], o.built)
	}
	if f := foreignModule(o.Kernel); f != "" {
		c.copyFile("lib/kushm/foreign.ko", f)
	}
	if cli != "" {
		c.copyFile("bin/kushm", cli)
	}
	var names []string
	for _, t := range bins {
		c.copyFile("tests/"+t.name+"/"+t.name+".test", t.bin)
		td := filepath.Join(t.dir, "testdata")
		if sz := dirSize(td); sz > 0 && sz <= maxTestdata {
			c.copyTree("tests/"+t.name+"/testdata", td)
		}
		names = append(names, t.name)
	}
	c.file("init", 0o755, []byte(o.initScript(names)))
	c.file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n"))
	c.file("etc/group", 0o644, []byte("root:x:0:\n"))
	if err := c.close(); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// foreignModule is a kushm.ko built earlier for another kernel, if any,
// for tests of the version-magic refusal.
func foreignModule(k Kernel) string {
	m, _ := filepath.Glob(filepath.Join(CacheDir(), "build", "*", "kmod", "kushm.ko"))
	for _, p := range m {
		if filepath.Base(filepath.Dir(filepath.Dir(p))) != k.KVer {
			return p
		}
	}
	return ""
}

func dirSize(d string) int64 {
	var n int64
	_ = filepath.WalkDir(d, func(_ string, e os.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if i, err := e.Info(); err == nil {
				n += i.Size()
			}
		}
		return nil
	})
	return n
}

// Run builds everything for o.Kernel, boots it and runs the tests.
// It returns a Result whenever the guest was started; the run passed
// when Result.Failed() is nil.
func Run(ctx context.Context, o Options) (*Result, error) {
	o.defaults()
	start := time.Now()
	res := &Result{Kernel: o.Kernel}
	if o.Work == "" {
		// Private per run: several engineers may run vmtest at once.
		base := filepath.Join(CacheDir(), "work")
		if err := os.MkdirAll(base, 0o755); err != nil {
			return nil, err
		}
		w, err := os.MkdirTemp(base, o.Kernel.KVer+"-")
		if err != nil {
			return nil, err
		}
		o.Work = w
		defer func() {
			if res.Done && res.Failed() == nil {
				os.RemoveAll(w)
			}
		}()
	} else if err := os.MkdirAll(o.Work, 0o755); err != nil {
		return nil, err
	}
	var ko, built string
	var err error
	switch o.Build {
	case "", "make":
		fmt.Fprintf(o.Log, "vmtest %s: building kushm.ko against %s\n", o.Kernel.Series, o.Kernel.KDir)
		ko, err = BuildModule(ctx, o.Repo, o.Kernel, o.Go)
		built = ko
	case "dkms":
		fmt.Fprintf(o.Log, "vmtest %s: building kushm.ko with dkms build -k %s\n", o.Kernel.Series, o.Kernel.KVer)
		built, ko, err = BuildModuleDKMS(ctx, o.Repo, o.Kernel)
	default:
		err = fmt.Errorf("vmtest: unknown build %q (make or dkms)", o.Build)
	}
	if err != nil {
		return nil, err
	}
	defer os.Remove(ko)
	defer os.Remove(built)
	o.built = built
	bins, cli, err := o.userland(ctx)
	if err != nil {
		return nil, err
	}
	initrd := filepath.Join(o.Work, "initramfs.cpio")
	if err := o.initramfs(initrd, ko, cli, bins); err != nil {
		return nil, err
	}
	res.Build = time.Since(start)
	res.ConsoleLog = filepath.Join(o.Work, "console.log")
	err = o.boot(ctx, initrd, res)
	// The latest console log of each kernel stays at a fixed place.
	if b, rerr := os.ReadFile(res.ConsoleLog); rerr == nil {
		last := filepath.Join(CacheDir(), "work", o.Kernel.KVer+".console.log")
		if os.WriteFile(last, b, 0o644) == nil {
			res.ConsoleLog = last
		}
	}
	res.Total = time.Since(start)
	return res, err
}

// loglevel is the guest console's loglevel: $VMTEST_LOGLEVEL or 4.
func loglevel() string {
	if l := os.Getenv("VMTEST_LOGLEVEL"); l != "" {
		return l
	}
	return "4"
}

func (o *Options) boot(ctx context.Context, initrd string, res *Result) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	qemu := os.Getenv("QEMU")
	if qemu == "" {
		qemu = "qemu-system-x86_64"
	}
	// TCG only: KVM hangs on the machines this runs on, and TCG makes the
	// run independent of the host's virtualisation support.
	accel := os.Getenv("VMTEST_ACCEL")
	if accel == "" {
		// Single-threaded TCG: as fast here (2 host cores), and immune to
		// the multi-threaded TCG hang seen on 6.1 when a tracepoint
		// unregister live-patches __schedule (text_poke_bp never acked).
		accel = "tcg,thread=single"
	}
	args := []string{
		"-accel", accel, "-cpu", "max",
		"-smp", fmt.Sprint(o.CPUs), "-m", o.Memory,
		"-nodefaults", "-display", "none", "-no-reboot",
		"-serial", "stdio",
		"-kernel", o.Kernel.Vmlinuz, "-initrd", initrd,
		// Errors and worse reach the console live (a hang still shows
		// them); the whole log comes back through dmesg. A task blocked
		// for 30 s is reported (and fails the run).
		"-append", "console=ttyS0 quiet loglevel=" + loglevel() + " panic=-1 rdinit=/init sysctl.kernel.hung_task_timeout_secs=30 rcupdate.rcu_cpu_stall_timeout=20 " + os.Getenv("VMTEST_CMDLINE"),
	}
	logf, err := os.Create(res.ConsoleLog)
	if err != nil {
		return err
	}
	defer logf.Close()
	c := exec.CommandContext(ctx, qemu, args...)
	c.Stdin = nil
	pr, pw := io.Pipe()
	c.Stdout, c.Stderr = pw, pw
	t0 := time.Now()
	fmt.Fprintf(o.Log, "vmtest %s: booting %s\n", o.Kernel.Series, o.Kernel.KVer)
	if err := c.Start(); err != nil {
		return fmt.Errorf("start %s: %w", qemu, err)
	}
	var console bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		prefix := "[" + o.Kernel.Series + "] "
		inDmesg := false
		for sc.Scan() {
			l := sc.Text()
			console.WriteString(l + "\n")
			fmt.Fprintln(logf, l)
			if res.Boot == 0 && strings.Contains(l, "KUSHM-VMTEST: KERNEL") {
				res.Boot = time.Since(t0)
			}
			if strings.Contains(l, markDmesgBegin) {
				inDmesg = true
			}
			if !inDmesg {
				fmt.Fprintln(o.Log, prefix+strings.TrimRight(l, "\r"))
			}
			if strings.Contains(l, markDmesgEnd) {
				inDmesg = false
			}
		}
	}()
	werr := c.Wait()
	pw.Close()
	<-done
	g := parseConsole(&console)
	res.Packages, res.Dmesg, res.Done = g.Packages, g.Dmesg, g.Done
	res.Complaints, res.BootComplaints = SplitBoot(Complaints(g.Dmesg), g.Uptime)
	if !g.Done {
		res.Complaints = append(res.Complaints, Complaints(console.String())...)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("kernel %s: the guest did not power off within %s (log: %s)", o.Kernel.Series, o.Timeout, res.ConsoleLog)
	}
	if werr != nil && !g.Done {
		return fmt.Errorf("kernel %s: qemu: %w (log: %s)", o.Kernel.Series, werr, res.ConsoleLog)
	}
	fmt.Fprintf(o.Log, "vmtest %s: guest ran for %s\n", o.Kernel.Series, time.Since(t0).Round(time.Millisecond))
	return nil
}
