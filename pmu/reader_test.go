//go:build linux

package pmu

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

func touchPages(t *testing.T, n int) {
	t.Helper()
	ps := os.Getpagesize()
	mem, err := syscall.Mmap(-1, 0, n*ps, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	// One fault per page (tools/cgwork.Fault, which imports pmu, says
	// why: transparent huge pages).
	const madvNoHugepage = 15 // MADV_NOHUGEPAGE
	if err := syscall.Madvise(mem, madvNoHugepage); err != nil && err != syscall.EINVAL {
		t.Fatal(err) // EINVAL: no transparent huge pages in this kernel
	}
	for i := 0; i < n; i++ {
		mem[i*ps] = 1
	}
	if err := syscall.Munmap(mem); err != nil {
		t.Fatal(err)
	}
}

func TestProcessPageFaults(t *testing.T) {
	for _, group := range []bool{false, true} {
		t.Run(map[bool]string{false: "independent", true: "group"}[group], func(t *testing.T) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			ids := []PresetID{SW_PAGE_FAULTS, SW_TASK_CLOCK, SW_CONTEXT_SWITCHES, SW_CPU_MIGRATIONS}
			r, err := OpenProcess(0, ids, &Options{Group: group})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			vals := make([]Value, len(ids))
			if err := r.Read(vals); err != nil {
				t.Fatal(err)
			}
			before := vals[0]
			const n = 256
			touchPages(t, n)
			if err := r.Read(vals); err != nil {
				t.Fatal(err)
			}
			d, ratio, ok := Delta(before, vals[0])
			if !ok {
				t.Fatalf("page faults not counted: %+v -> %+v", before, vals[0])
			}
			if d < n {
				t.Fatalf("touched %d new pages, counted %d page faults", n, d)
			}
			if ratio != 1 {
				t.Errorf("software event multiplexed? ratio %v", ratio)
			}
			if !vals[1].OK || vals[1].Scaled == 0 {
				t.Errorf("task clock %+v", vals[1])
			}
			if group && vals[0].Enabled != vals[1].Enabled {
				t.Errorf("group members have different enabled times: %d, %d", vals[0].Enabled, vals[1].Enabled)
			}
		})
	}
}

func TestCPUSoftwareEvents(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ids := []PresetID{SW_PAGE_FAULTS, SW_TASK_CLOCK, PAPI_TOT_CYC}
	cpu := 0
	r, err := OpenCPU(cpu, ids, &Options{Group: true})
	if errors.Is(err, ErrPermission) {
		t.Skipf("per-CPU counting not permitted here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if sys := LoadSystem("/"); sys.CorePMU == "" {
		if err := r.Err(2); !errors.Is(err, ErrNoPMU) {
			t.Errorf("cycles without a core PMU: err %v, want ErrNoPMU", err)
		} else if !strings.Contains(err.Error(), "not available on this machine, because the kernel has no hardware PMU for this CPU") {
			t.Errorf("message %q", err)
		}
	}
	vals := make([]Value, len(ids))
	if err := r.Read(vals); err != nil {
		t.Fatal(err)
	}
	if !vals[1].OK || vals[1].Raw == 0 {
		t.Errorf("cpu task-clock %+v", vals[1])
	}
	// FD: both software presets share one group; an unavailable preset
	// has no descriptor.
	fd0, g0 := r.FD(0)
	fd1, g1 := r.FD(1)
	if fd0 < 0 || fd1 < 0 || fd0 == fd1 || g0 < 0 || g0 != g1 {
		t.Errorf("FD: %d/%d, %d/%d: want two descriptors of one group", fd0, g0, fd1, g1)
	}
	if r.Err(2) != nil {
		return
	}
	if fd, _ := r.FD(2); fd < 0 {
		t.Errorf("FD(cycles) = %d", fd)
	}
}

func TestOpenProcessNoSuchPID(t *testing.T) {
	_, err := OpenProcess(1<<22+12345, []PresetID{SW_PAGE_FAULTS}, nil)
	if err == nil {
		t.Fatal("opened counters for a missing process")
	}
	if errors.Is(err, ErrNotAvailable) {
		t.Fatalf("missing process reported as unavailable preset: %v", err)
	}
}

func TestCgroupSoftwareEvents(t *testing.T) {
	path := ""
	for _, p := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup/perf_event", "/sys/fs/cgroup"} {
		if _, err := os.Stat(p + "/cgroup.procs"); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Skip("no cgroup hierarchy mounted")
	}
	all, err := OpenCgroupAll(path, []PresetID{SW_TASK_CLOCK}, nil)
	if err == nil {
		v := make([]Value, 1)
		touchPages(t, 64)
		if err := all.Read(v); err != nil || !v[0].OK || v[0].Raw == 0 {
			t.Errorf("cgroup task clock on all CPUs: %+v %v", v[0], err)
		}
		all.Close()
	}
	r, err := OpenCgroup(path, 0, []PresetID{SW_TASK_CLOCK, PAPI_L3_TCM}, nil)
	if err != nil {
		if errors.Is(err, ErrNotAvailable) {
			t.Skipf("cgroup events not supported by this kernel: %v", err)
		}
		t.Fatal(err)
	}
	defer r.Close()
	vals := make([]Value, 2)
	if err := r.Read(vals); err != nil {
		t.Fatal(err)
	}
	if r.Err(1) == nil {
		t.Logf("L3 misses countable per cgroup here")
	}
}

func TestProcessAllThreads(t *testing.T) {
	// The test binary has several threads; fault pages on a thread other
	// than the main one and find them in the process-wide sum.
	ids := []PresetID{SW_PAGE_FAULTS, SW_TASK_CLOCK}
	// A thread that exists before the reader is opened.
	ready, start, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		close(ready)
		<-start
		touchPages(t, 128)
		close(done)
	}()
	<-ready
	p, err := OpenProcessAll(os.Getpid(), ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if len(p.Targets()) < 2 {
		close(start)
		t.Skipf("only %d threads", len(p.Targets()))
	}
	prev := make([]Value, 2)
	cur := make([]Value, 2)
	if err := p.Read(prev); err != nil {
		t.Fatal(err)
	}
	const n = 128
	close(start)
	<-done
	if err := p.Read(cur); err != nil {
		t.Fatal(err)
	}
	d, _, ok := Delta(prev[0], cur[0])
	if !ok || d < n {
		t.Errorf("process-wide page faults %d (ok %v), want >= %d", d, ok, n)
	}
}

func TestNothingOpens(t *testing.T) {
	if LoadSystem("/").CorePMU != "" {
		t.Skip("this machine has a core PMU")
	}
	_, err := OpenProcess(0, []PresetID{PAPI_TOT_CYC, PAPI_TOT_INS}, nil)
	if !errors.Is(err, ErrNoPMU) || !strings.Contains(err.Error(), "no preset could be opened") {
		t.Errorf("%v", err)
	}
}

func TestOfflineCPU(t *testing.T) {
	_, err := OpenCPU(1<<20, []PresetID{SW_TASK_CLOCK}, nil)
	if !errors.Is(err, ErrNoCPU) || errors.Is(err, ErrNotAvailable) {
		t.Errorf("cpu 1<<20: %v", err)
	}
}

// On a machine with a hardware PMU: all core presets in groups of at most
// four are scheduled (multiplexed as groups), never stuck at Running 0.
func TestHardwareGroupsFit(t *testing.T) {
	if LoadSystem("/").CorePMU == "" {
		t.Skip("no hardware PMU on this machine (a VM without a virtual PMU)")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ids := []PresetID{PAPI_TOT_CYC, PAPI_TOT_INS, PAPI_REF_CYC, PAPI_L1_DCM, PAPI_L2_TCM, PAPI_BR_INS, PAPI_BR_MSP, PAPI_TLB_DM, PAPI_TLB_IM}
	r, err := OpenProcess(0, ids, &Options{Group: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	x := 0
	for i := 0; i < 50_000_000; i++ {
		x += i & 7
	}
	_ = x
	vals := make([]Value, len(ids))
	if err := r.Read(vals); err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		if r.Err(i) == nil && !v.OK {
			t.Errorf("%s never scheduled: %+v", ids[i], v)
		}
	}
}
