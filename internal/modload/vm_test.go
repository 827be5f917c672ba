package modload

// Kernel tests: they run inside the qemu guest (make vmtest, package
// tools/vmtest), where the module file is at vmtest.ModulePath().

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/errs"
	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/tools/cgwork"
	"github.com/kushm/kushm/tools/vmtest"
	"github.com/kushm/kushm/userside/client/dump"
)

const (
	devPath   = "/dev/kushm"
	debugPath = "/sys/kernel/debug/kushm/region"
)

// The child mode of the test binary: fault in N pages, sleep M times,
// say "ready", then wait for stdin to close.
const childEnv = "KUSHM_KMOD_TEST_CHILD"

func TestMain(m *testing.M) {
	cgwork.Main() // the known work of the cgroups tests (cgroups_vm_test.go)
	if spec := os.Getenv(childEnv); spec != "" {
		child(spec)
		return
	}
	os.Exit(m.Run())
}

func child(spec string) {
	var pages, sleeps int
	fmt.Sscanf(spec, "%d,%d", &pages, &sleeps)
	if err := cgwork.Fault(pages); err != nil {
		os.Exit(3)
	}
	for i := 0; i < sleeps; i++ {
		unix.Nanosleep(&unix.Timespec{Nsec: 200_000}, nil)
	}
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
}

func load(t *testing.T, params map[string]string) {
	t.Helper()
	if Root("").Loaded() {
		if err := Unload(); err != nil {
			t.Fatalf("unload leftover: %v", err)
		}
	}
	if err := Load(vmtest.ModulePath(), params); err != nil {
		t.Fatalf("Load: %v", err)
	}
	t.Cleanup(func() {
		if Root("").Loaded() {
			if err := Unload(); err != nil {
				t.Errorf("Unload: %v", err)
			}
		}
	})
}

func open(t *testing.T, path string, o shm.Options) *shm.Region {
	t.Helper()
	var r *shm.Region
	var err error
	// The first sample marks the producer running.
	for deadline := time.Now().Add(5 * time.Second); ; {
		r, err = shm.Open(path, o)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("shm.Open(%s): %v", path, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestVMLoadUnloadCycles(t *testing.T) {
	vmtest.Require(t)
	const n = 50
	for i := 0; i < n; i++ {
		if err := Load(vmtest.ModulePath(), map[string]string{"interval_ms": "10"}); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		if _, err := os.Stat(devPath); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		if i%10 == 0 {
			// Let the sampler and the sched_switch probe run a bit.
			time.Sleep(30 * time.Millisecond)
		}
		if err := Unload(); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
	}
	if err := Unload(); !errors.Is(err, ErrNotLoaded) {
		t.Fatalf("Unload of an unloaded module = %v, want ErrNotLoaded", err)
	}
}

func TestVMLoadErrors(t *testing.T) {
	vmtest.Require(t)
	load(t, nil)
	if err := Load(vmtest.ModulePath(), nil); !errors.Is(err, ErrLoaded) {
		t.Fatalf("second Load = %v, want ErrLoaded", err)
	}
	if err := Unload(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []map[string]string{{"interval_ms": "1"}, {"presets": "NOPE"}, {"msrs": "NOPE"}, {"procs_capacity": "0"}} {
		if err := Load(vmtest.ModulePath(), p); !errors.Is(err, ErrBadParam) {
			t.Errorf("Load(%v) = %v, want ErrBadParam", p, err)
			Unload()
		}
	}
	if Root("").Loaded() {
		t.Fatal("a failed load left the module loaded")
	}
}

func TestVMBothMmapPaths(t *testing.T) {
	vmtest.Require(t)
	load(t, nil)
	for _, p := range []string{devPath, debugPath} {
		r := open(t, p, shm.Options{})
		h := r.Header()
		if h.ProducerKind != abi.ProducerKernel || h.NCPUs == 0 {
			t.Errorf("%s: header %+v", p, h)
		}
		for _, name := range []string{abi.SecNameSchema, abi.SecNamePMU, abi.SecNameMSR, abi.SecNameProcs, abi.SecNameSyscalls, abi.SecNameControl, abi.SecNameInfo} {
			if _, err := r.Section(name); err != nil {
				t.Errorf("%s: %v", p, err)
			}
		}
		if err := r.CheckProducer(); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		var buf bytes.Buffer
		if err := dump.Dump(r, &buf, dump.Options{}); err != nil {
			t.Errorf("%s: dump: %v", p, err)
		}
	}
}

func TestVMWritableMappingRefused(t *testing.T) {
	vmtest.Require(t)
	load(t, nil)
	r := open(t, devPath, shm.Options{})
	ctl, err := r.Section(abi.SecNameControl)
	if err != nil {
		t.Fatal(err)
	}
	size := int(r.Header().RegionSize)
	for _, p := range []string{devPath, debugPath} {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fd := int(f.Fd())
		// Producer pages: no shared writable mapping, anywhere.
		for _, off := range []int64{0, 4096} {
			if m, err := unix.Mmap(fd, off, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); !errors.Is(err, unix.EPERM) {
				t.Errorf("%s: writable mmap at %d = %v, want EPERM", p, off, err)
				if err == nil {
					unix.Munmap(m)
				}
			}
		}
		// A mapping that spans producer pages and the control section.
		if m, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); !errors.Is(err, unix.EPERM) {
			t.Errorf("%s: writable whole-region mmap = %v, want EPERM", p, err)
			if err == nil {
				unix.Munmap(m)
			}
		}
		// A read-only mapping cannot be made writable later.
		m, err := unix.Mmap(fd, 0, 4096, unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			t.Fatalf("%s: read-only mmap: %v", p, err)
		}
		if err := unix.Mprotect(m, unix.PROT_READ|unix.PROT_WRITE); err == nil {
			t.Errorf("%s: mprotect to writable succeeded", p)
		}
		unix.Munmap(m)
		// Out of bounds, and offsets that overflow.
		if _, err := unix.Mmap(fd, int64(size), 4096, unix.PROT_READ, unix.MAP_SHARED); err == nil {
			t.Errorf("%s: mmap past the end succeeded", p)
		}
		if _, err := unix.Mmap(fd, int64(size)-4096, 8192, unix.PROT_READ, unix.MAP_SHARED); err == nil {
			t.Errorf("%s: mmap straddling the end succeeded", p)
		}
		if _, err := unix.Mmap(fd, 1<<62, 4096, unix.PROT_READ, unix.MAP_SHARED); err == nil {
			t.Errorf("%s: mmap at a huge offset succeeded", p)
		}
		// The control section maps writable.
		cm, err := unix.Mmap(fd, int64(ctl.Offset), int(ctl.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			t.Fatalf("%s: writable control mmap: %v", p, err)
		}
		if got := binary.LittleEndian.Uint32(cm); got != abi.ControlMagic {
			t.Errorf("%s: control magic %#x", p, got)
		}
		unix.Munmap(cm)
		// One page past the control section is refused.
		if m, err := unix.Mmap(fd, int64(ctl.Offset), int(ctl.Size)+4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err == nil {
			t.Errorf("%s: writable mmap past the control section succeeded", p)
			unix.Munmap(m)
		}
	}
}

func TestVMUnloadWhileMapped(t *testing.T) {
	vmtest.Require(t)
	for _, p := range []string{devPath, debugPath} {
		load(t, nil)
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		m, err := unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			t.Fatal(err)
		}
		f.Close() // the mapping alone must keep the module
		if err := Unload(); !errors.Is(err, ErrBusy) {
			t.Fatalf("%s: Unload while mapped = %v, want ErrBusy", p, err)
		}
		if binary.LittleEndian.Uint64(m) != abi.Magic {
			t.Fatalf("%s: mapping lost its contents", p)
		}
		unix.Munmap(m)
		if err := Unload(); err != nil {
			t.Fatalf("%s: Unload after munmap: %v", p, err)
		}
	}
}

func TestVMSoftwareCounters(t *testing.T) {
	vmtest.Require(t)
	load(t, map[string]string{"interval_ms": "20"})
	r := open(t, devPath, shm.Options{})
	a, err := atomicarr.Open(r, abi.SecNamePMU)
	if err != nil {
		t.Fatal(err)
	}
	sum := func() (pf, cs uint64, ok bool) {
		for cpu := 0; cpu < a.Rows(); cpu++ {
			var s atomicarr.Snapshot
			if err := a.Snapshot(cpu, &s); err != nil {
				t.Fatal(err)
			}
			t.Logf("cpu %d: valid %#x vals %v", cpu, s.Valid, s.Vals)
			if s.Has(int(pmu.SW_PAGE_FAULTS)) && s.Has(int(pmu.SW_CONTEXT_SWITCHES)) {
				ok = true
			}
			pf += s.Vals[pmu.SW_PAGE_FAULTS]
			cs += s.Vals[pmu.SW_CONTEXT_SWITCHES]
		}
		return
	}
	time.Sleep(200 * time.Millisecond)
	// Counters that have not moved yet read n/a (0 that never moved).
	pf0, cs0, _ := sum()
	// Cause page faults and context switches.
	if err := cgwork.Fault(256); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		time.Sleep(time.Millisecond)
	}
	// Wait for the samples that include them (polling, not a fixed sleep:
	// a loaded CI host can delay the guest's sampling work).
	var pf1, cs1 uint64
	var ok bool
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		pf1, cs1, ok = sum()
		if ok && pf1 >= pf0+256 && cs1 >= cs0+50 || time.Now().After(deadline) {
			break
		}
	}
	if !ok {
		t.Fatal("software counters page-faults/context-switches valid on no CPU")
	}
	if pf1 < pf0+256 {
		t.Errorf("page faults %d -> %d, want +256", pf0, pf1)
	}
	if cs1 < cs0+50 {
		t.Errorf("context switches %d -> %d, want +50", cs0, cs1)
	}
	// Under TCG hardware events do not exist: they must be n/a, and the
	// info section must say why.
	text := infoText(t, r)
	t.Logf("info:\n%s", text)
	var s atomicarr.Snapshot
	a.Snapshot(0, &s)
	for p := 0; p < pmu.NumPresets && p < 11; p++ {
		if s.Has(p) {
			continue // a guest with a virtual PMU
		}
		name := a.Columns()[p].Name
		if !strings.Contains(text, name+": not available on this machine, because") {
			t.Errorf("preset %s is n/a but the info section does not say why", name)
		}
	}
}

func TestVMPerProcessStats(t *testing.T) {
	vmtest.Require(t)
	load(t, map[string]string{"interval_ms": "20"})
	r := open(t, devPath, shm.Options{})
	tab, err := rcuhash.Open(r, abi.SecNameProcs)
	if err != nil {
		t.Fatal(err)
	}
	const pages, sleeps = 500, 100
	exe, _ := os.Executable()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+strconv.Itoa(pages)+","+strconv.Itoa(sleeps))
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer in.Close()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("child said %q", line)
	}
	pid := uint64(cmd.Process.Pid)
	val := make([]byte, tab.ValueSize())
	var pf, cs, ns uint64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err := tab.Lookup(pid, val); err != nil {
			continue
		}
		pf = binary.LittleEndian.Uint64(val[8*pmu.SW_PAGE_FAULTS:])
		cs = binary.LittleEndian.Uint64(val[8*pmu.SW_CONTEXT_SWITCHES:])
		ns = binary.LittleEndian.Uint64(val[8*abi.ProcCounterRuntime:])
		if pf >= pages && cs >= sleeps {
			break
		}
	}
	t.Logf("child %d: page faults %d, context switches %d, on-CPU %d ns", pid, pf, cs, ns)
	if pf < pages || cs < sleeps || ns == 0 {
		t.Fatalf("child %d: page faults %d (want >= %d), context switches %d (want >= %d), on-CPU %d ns",
			pid, pf, pages, cs, sleeps, ns)
	}
	data := make([]byte, tab.DataSize())
	if err := tab.Read(pid, data, nil); err != nil {
		t.Fatal(err)
	}
	if got := binary.LittleEndian.Uint32(data[16:]); got != uint32(pid) {
		t.Errorf("node data pid %d, want %d", got, pid)
	}
	in.Close()
	cmd.Wait()
	// Its exit removes it (after a grace period the node is reusable).
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		err := tab.Lookup(pid, val)
		if errors.Is(err, shm.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exited child still in the table: %v", err)
		}
	}
}

// mapControl maps the module's control section writable, as a user in
// the control group would.
func mapControl(t *testing.T, r *shm.Region) []byte {
	t.Helper()
	ctl, err := r.Section(abi.SecNameControl)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(devPath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the mapping keeps the file
	m, err := unix.Mmap(int(f.Fd()), int64(ctl.Offset), int(ctl.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(m) })
	return m
}

func TestVMHostileControl(t *testing.T) {
	vmtest.Require(t)
	load(t, map[string]string{"interval_ms": "10"})
	r := open(t, devPath, shm.Options{WritableControl: true})
	m := mapControl(t, r)
	rng := rand.New(rand.NewSource(1))
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		rng.Read(m)
		// Plus the edge values of every field. The module may read any
		// of them, valid ones too: a random interval of up to 60 s.
		for _, v := range []uint32{0, 1, 9999, 10000, 60000000, 60000001, ^uint32(0)} {
			binary.LittleEndian.PutUint32(m[abi.ControlIntervalUsOff:], v)
			binary.LittleEndian.PutUint32(m[abi.ControlKx100Off:], v)
			binary.LittleEndian.PutUint32(m[abi.ControlWarmupOff:], v)
		}
		time.Sleep(time.Millisecond)
	}
	// Whatever interval the module last took, it reads the control
	// section and rewrites its own fields at least every
	// HeartbeatEveryUs: poll until it has done so after the last
	// random write.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if r.Header().ControlRejected != 0 && binary.LittleEndian.Uint32(m[abi.ControlMagicOff:]) == abi.ControlMagic {
			break
		}
	}
	// The count is in the read-only header (ABI 1.2), not in the pages
	// users write.
	if rej := r.Header().ControlRejected; rej == 0 {
		t.Error("the module counted no rejected control values")
	}
	if got := binary.LittleEndian.Uint32(m[abi.ControlMagicOff:]); got != abi.ControlMagic {
		t.Errorf("control magic %#x after the producer's refresh", got)
	}
	// The producer still runs: its heartbeat is fresh again within a
	// few seconds (a loaded TCG host can pause the guest's work queue
	// past the 1 s staleness limit once; a dead or wedged producer
	// never comes back).
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err = r.CheckProducer(); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

// A long interval set through control slows sampling, not the heartbeat
// nor the module's reading of control: a lowered interval is heard
// within HeartbeatEveryUs, not at the end of the long one.
func TestVMControlIntervalPrompt(t *testing.T) {
	vmtest.Require(t)
	load(t, map[string]string{"interval_ms": "10"})
	r := open(t, devPath, shm.Options{WritableControl: true})
	m := mapControl(t, r)
	a, err := atomicarr.Open(r, abi.SecNamePMU)
	if err != nil {
		t.Fatal(err)
	}
	stamp := func() uint64 {
		var s atomicarr.Snapshot
		if err := a.Snapshot(0, &s); err != nil {
			t.Fatal(err)
		}
		return s.TimeNs
	}
	every := uint64(abi.HeartbeatEveryUs) * 1000
	binary.LittleEndian.PutUint32(m[abi.ControlIntervalUsOff:], abi.MaxIntervalUs)
	// Sampling stops (a row's time stands still for a second) while the
	// heartbeat goes on, with the period it now promises.
	stopped := false
	for deadline := time.Now().Add(15 * time.Second); !stopped && time.Now().Before(deadline); {
		s0 := stamp()
		time.Sleep(time.Second)
		stopped = stamp() == s0
	}
	if !stopped {
		t.Fatal("sampling did not slow down after the interval was set to 60 s")
	}
	if h := r.Header(); h.HeartbeatPeriodNs != every {
		t.Errorf("heartbeat period %d ns at a 60 s interval, want %d", h.HeartbeatPeriodNs, every)
	}
	if err := r.CheckProducer(); err != nil {
		t.Errorf("at a 60 s interval: %v", err)
	}
	// Lowered again: heard at the next heartbeat, not in 60 s.
	s0 := stamp()
	set := time.Now()
	binary.LittleEndian.PutUint32(m[abi.ControlIntervalUsOff:], 20000)
	for stamp() == s0 {
		if time.Since(set) > 10*time.Second {
			t.Fatal("the lowered interval was not heard within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("lowered interval heard after %v", time.Since(set).Round(time.Millisecond))
	// The period is published after the sample, in the same work.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if h := r.Header(); h.HeartbeatPeriodNs == 20_000_000 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("heartbeat period %d ns at a 20 ms interval, want 20000000", h.HeartbeatPeriodNs)
		}
	}
}

// The CLI (/bin/kushm in the guest): load, status prefers the kernel
// producer, unload refused while mapped, unload.
func TestVMCommandLine(t *testing.T) {
	vmtest.Require(t)
	if Root("").Loaded() {
		Unload()
	}
	kushm := func(args ...string) (string, error) {
		out, err := exec.Command("/bin/kushm", args...).CombinedOutput()
		return string(out), err
	}
	if out, err := kushm("load", "--module", vmtest.ModulePath(), "--param", "interval_ms=20"); err != nil {
		t.Fatalf("kushm load: %v\n%s", err, out)
	}
	defer Unload()
	if out, err := kushm("load", "--module", vmtest.ModulePath()); err == nil || !strings.Contains(out, "already loaded") {
		t.Errorf("second kushm load: %v\n%s", err, out)
	}
	time.Sleep(100 * time.Millisecond)
	out, err := kushm("status")
	if err != nil || !strings.Contains(out, "kernel") {
		t.Errorf("kushm status: %v\n%s", err, out)
	}
	t.Logf("kushm status:\n%s", out)
	if out, err := kushm("unload"); err != nil {
		t.Fatalf("kushm unload: %v\n%s", err, out)
	}
	if out, err := kushm("unload"); err == nil || !strings.Contains(out, "not loaded") {
		t.Errorf("second kushm unload: %v\n%s", err, out)
	}
}

// infoText reads the info section through its codec (abi.ParseInfo) and
// returns its entries as the sentences readers print, one a line. Every
// line the module wrote must be a note or a well-formed entry.
func infoText(t *testing.T, r *shm.Region) string {
	t.Helper()
	info, err := r.Section(abi.SecNameInfo)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := r.Bytes(info)
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	entries, notes := abi.ParseInfo(b)
	if lines := strings.Count(string(b), "\n"); lines != len(entries)+len(notes) {
		t.Errorf("info: %d lines, %d entries and %d notes:\n%s", lines, len(entries), len(notes), b)
	}
	var out strings.Builder
	for _, e := range entries {
		if e.Source == "" || e.Kind == "" || e.Cause == "" {
			t.Errorf("info entry without source, kind or cause: %+v", e)
		}
		out.WriteString(errs.FromEntry(e).Error() + "\n")
	}
	return out.String()
}

// Parameters choose what is sampled; what is left out is n/a with a reason.
func TestVMParameters(t *testing.T) {
	vmtest.Require(t)
	load(t, map[string]string{"presets": "SW_PAGE_FAULTS,context_switches", "msrs": "none", "interval_ms": "20"})
	p, err := Root("").Params()
	if err != nil || p["presets"] != "SW_PAGE_FAULTS,context_switches" || p["interval_ms"] != "20" {
		t.Fatalf("Params = %v, %v", p, err)
	}
	r := open(t, devPath, shm.Options{})
	text := infoText(t, r)
	for _, want := range []string{
		"SW_TASK_CLOCK: not available on this machine, because the module parameter presets leaves it out",
		"TSC: not available on this machine, because the module parameter msrs leaves it out",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("info lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "SW_PAGE_FAULTS:") {
		t.Errorf("info says the chosen SW_PAGE_FAULTS is unavailable:\n%s", text)
	}
	a, err := atomicarr.Open(r, abi.SecNamePMU)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	for cpu := 0; cpu < a.Rows(); cpu++ {
		if v := a.Valid(cpu); v&^(1<<pmu.SW_PAGE_FAULTS|1<<pmu.SW_CONTEXT_SWITCHES) != 0 {
			t.Errorf("cpu %d: valid %#x has presets that were left out", cpu, v)
		}
	}
}

// A full per-process table refuses inserts and counts them; nothing
// already stored is evicted; nothing warns.
func TestVMProcsTableFull(t *testing.T) {
	vmtest.Require(t)
	load(t, map[string]string{"procs_capacity": "4"})
	r := open(t, devPath, shm.Options{})
	tab, err := rcuhash.Open(r, abi.SecNameProcs)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []*exec.Cmd
	for i := 0; i < 10; i++ {
		c := exec.Command("/bin/sleep", "1")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	time.Sleep(300 * time.Millisecond)
	st := tab.Stats()
	for _, c := range cmds {
		c.Wait()
	}
	if st.Count > uint64(tab.Capacity()) || st.InsertFull == 0 {
		t.Fatalf("stats %+v with capacity %d: want a full table that counted refusals", st, tab.Capacity())
	}
}

// Processes come and go (inserts, deletes, node reuse after a grace
// period) while readers walk and look up the table: readers never see a
// corrupt table and every process that ran is found while it is alive.
func TestVMProcsChurn(t *testing.T) {
	vmtest.Require(t)
	load(t, map[string]string{"procs_capacity": "64", "interval_ms": "10"})
	r := open(t, devPath, shm.Options{})
	tab, err := rcuhash.Open(r, abi.SecNameProcs)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		val := make([]byte, tab.ValueSize())
		for {
			select {
			case <-stop:
				errc <- nil
				return
			default:
			}
			tab.Range(func(e *rcuhash.Entry) bool {
				if err := tab.Lookup(e.Key, val); err != nil && !errors.Is(err, shm.ErrNotFound) && !errors.Is(err, shm.ErrRetry) {
					errc <- err
					return false
				}
				return true
			})
		}
	}()
	for i := 0; i < 150; i++ {
		// sleep blocks, so the process is switched out and inserted.
		if err := exec.Command("/bin/sleep", "0.01").Run(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	if err := <-errc; err != nil {
		t.Fatalf("reader: %v", err)
	}
	st := tab.Stats()
	t.Logf("procs stats after churn: %+v", st)
	if st.Deletes == 0 || st.Inserts <= uint64(tab.Capacity()) {
		t.Errorf("stats %+v: want deletes and more inserts than capacity %d (node reuse)", st, tab.Capacity())
	}
	// The sweep ran all along (every second): it must have found no row
	// the exit probe missed, and must not have taken an exiting process
	// for a leak.
	if st.Swept != 0 {
		t.Errorf("stats %+v: rows swept, want 0", st)
	}
}

// Loading fails with a clear error for a module built for another kernel
// and for a caller that is not root.
func TestVMLoadRefusals(t *testing.T) {
	vmtest.Require(t)
	if Root("").Loaded() {
		Unload()
	}
	if f := vmtest.ForeignModulePath(); f != "" {
		err := Load(f, nil)
		if !errors.Is(err, ErrVersionMagic) {
			t.Errorf("Load of a module for another kernel = %v, want ErrVersionMagic", err)
			Unload()
		}
		t.Logf("foreign module: %v", err)
	} else {
		t.Log("no module built for another kernel: version-magic refusal not checked")
	}
	cmd := exec.Command("/bin/kushm", "load", "--module", vmtest.ModulePath())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "needs root") {
		t.Errorf("kushm load as nobody: %v\n%s", err, out)
	}
	t.Logf("as nobody: %s", strings.TrimSpace(string(out)))
	if Root("").Loaded() {
		t.Error("a refused load left the module loaded")
		Unload()
	}
}

// CPU hotplug: an offline CPU's rows go n/a, its events are reopened when
// it comes back, and its counters move again.
func TestVMCPUHotplug(t *testing.T) {
	vmtest.Require(t)
	const online = "/sys/devices/system/cpu/cpu1/online"
	if _, err := os.Stat(online); err != nil {
		t.Skipf("cpu1 cannot go offline here: %v", err)
	}
	load(t, map[string]string{"interval_ms": "20"})
	r := open(t, devPath, shm.Options{})
	a, err := atomicarr.Open(r, abi.SecNamePMU)
	if err != nil {
		t.Fatal(err)
	}
	set := func(v string) {
		if err := os.WriteFile(online, []byte(v), 0); err != nil {
			t.Fatalf("cpu1 online=%s: %v", v, err)
		}
	}
	defer os.WriteFile(online, []byte("1"), 0)
	for i := 0; i < 5; i++ {
		set("0")
		time.Sleep(60 * time.Millisecond)
		if v := a.Valid(1); v != 0 {
			t.Fatalf("cycle %d: offline cpu1 row valid %#x, want n/a", i, v)
		}
		set("1")
	}
	// The events of cpu1 are reopened by the sampler within an interval;
	// wait for a fresh sample of cpu1 with a moving counter.
	var s0 atomicarr.Snapshot
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err := a.Snapshot(1, &s0); err != nil {
			t.Fatal(err)
		}
		if s0.Has(int(pmu.SW_CONTEXT_SWITCHES)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cpu1 after online: valid %#x vals %v, want its counters back", s0.Valid, s0.Vals)
		}
	}
	// Work on cpu1 so its counters move.
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var cs unix.CPUSet
		cs.Set(1)
		if err := unix.SchedSetaffinity(0, &cs); err != nil {
			done <- err
			return
		}
		done <- cgwork.Fault(256)
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var s atomicarr.Snapshot
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err := a.Snapshot(1, &s); err != nil {
			t.Fatal(err)
		}
		if s.Has(int(pmu.SW_PAGE_FAULTS)) && s.Vals[pmu.SW_PAGE_FAULTS] >= s0.Vals[pmu.SW_PAGE_FAULTS]+256 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cpu1 after online: valid %#x vals %v (before %v), want 256 more page faults", s.Valid, s.Vals, s0.Vals)
		}
	}
}

// TestVMDebugfsTruncateRefused: root cannot resize the debugfs region file
// (ftruncate, truncate, open with O_TRUNC): readers check its size, so a
// truncation would break every reader until the module is reloaded.
func TestVMDebugfsTruncateRefused(t *testing.T) {
	vmtest.Require(t)
	load(t, nil)
	r := open(t, debugPath, shm.Options{})
	want := int64(r.Header().RegionSize)
	f, err := os.OpenFile(debugPath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(0); !errors.Is(err, unix.EPERM) {
		t.Errorf("ftruncate of the debugfs region file: %v, want EPERM", err)
	}
	if err := os.Truncate(debugPath, 4096); !errors.Is(err, unix.EPERM) {
		t.Errorf("truncate of the debugfs region file: %v, want EPERM", err)
	}
	if g, err := os.OpenFile(debugPath, os.O_RDWR|os.O_TRUNC, 0); err == nil {
		g.Close()
		t.Errorf("open with O_TRUNC succeeded")
	}
	if st, err := os.Stat(debugPath); err != nil || st.Size() != want {
		t.Fatalf("debugfs region file: %v, %v bytes, want %d", err, st.Size(), want)
	}
	// Readers still open it.
	r2 := open(t, debugPath, shm.Options{})
	if err := r2.CheckProducer(); err != nil {
		t.Fatal(err)
	}
}
