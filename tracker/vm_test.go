// SPDX-License-Identifier: Apache-2.0

package tracker

import (
	"errors"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/modload"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/tools/vmtest"
	"github.com/kushm/kushm/userside/client"
)

const nrNanosleep = 35
const nrGetppid = 110

// vmLoad loads the module (once) and checks its kfuncs exist.
func vmLoad(t *testing.T) {
	t.Helper()
	vmtest.Require(t)
	if !modload.Root("").Loaded() {
		restore := pinAll()
		err := modload.Load(vmtest.ModulePath(), nil)
		restore()
		if err != nil {
			t.Fatalf("load module: %v", err)
		}
	}
	if err := KfuncsAvailable(); err != nil {
		t.Fatalf("kfuncs of %s (%s): %v", vmtest.Series(), vmtest.KernelRelease(), err)
	}
}

// vmRegion opens /dev/kushm with a writable control section.
func vmRegion(t *testing.T) *shm.Region {
	t.Helper()
	vmLoad(t)
	var r *shm.Region
	var err error
	for i := 0; i < 10; i++ {
		if r, err = shm.Open(shm.DevicePath, shm.Options{WritableControl: true, AllowStale: true}); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("open region: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func probeRunner(t *testing.T) func(ProbeArgs) ProbeArgs {
	t.Helper()
	p, err := LoadProbe()
	if err != nil {
		t.Fatalf("syscall program calling the kfuncs: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return func(a ProbeArgs) ProbeArgs {
		t.Helper()
		if err := p.Run(&a); err != nil {
			t.Fatal(err)
		}
		return a
	}
}

func TestVMKfuncsProbe(t *testing.T) {
	vmLoad(t)
	run := probeRunner(t)
	const (
		einval  = -int64(syscall.EINVAL)
		enoent  = -int64(syscall.ENOENT)
		e2big   = -int64(syscall.E2BIG)
		enodata = -int64(syscall.ENODATA)
	)
	// Good arguments: counter 0 or not measured here; unknown key.
	a := run(ProbeArgs{Cpu: 0, Preset: 0, Table: abi.TableSyscalls, Key: 499, Nr: 499})
	if a.CounterRet != 0 && a.CounterRet != enodata {
		t.Errorf("read_counter(0, 0) = %d, want 0 or -ENODATA", a.CounterRet)
	}
	if a.LookupRet != enoent {
		t.Errorf("table_lookup(syscalls, 499) = %d, want -ENOENT", a.LookupRet)
	}
	// Bad cpu, unknown preset, unknown table, short buffer, bad nr.
	a = run(ProbeArgs{Cpu: 1 << 30, Preset: 0, Table: 7, Nr: 100000, Record: 1, LatencyNs: 5})
	if a.CounterRet != einval {
		t.Errorf("read_counter(bad cpu) = %d, want -EINVAL", a.CounterRet)
	}
	if a.LookupRet != einval || a.LookupShortRet != einval {
		t.Errorf("table_lookup(unknown table) = %d/%d, want -EINVAL", a.LookupRet, a.LookupShortRet)
	}
	if a.RecordRet != einval || a.Threshold != 0 {
		t.Errorf("record_latency(bad nr) = %d, threshold %d; want -EINVAL, 0", a.RecordRet, a.Threshold)
	}
	a = run(ProbeArgs{Cpu: 0, Preset: 99, Table: abi.TableProcs, Key: uint64(os.Getpid())})
	if a.CounterRet != einval {
		t.Errorf("read_counter(unknown preset) = %d, want -EINVAL", a.CounterRet)
	}
	if a.LookupShortRet != e2big {
		t.Errorf("table_lookup(procs, 8-byte buffer) = %d, want -E2BIG", a.LookupShortRet)
	}
	// Record through the kfunc, then read it back through the kfunc and Go.
	const nr = 400
	for i := 0; i < 10; i++ {
		if a = run(ProbeArgs{Table: abi.TableSyscalls, Key: nr, Nr: nr, Record: 1, LatencyNs: 1000}); a.RecordRet != 0 {
			t.Fatalf("record_latency = %d, want 0 (warm-up)", a.RecordRet)
		}
	}
	a = run(ProbeArgs{Table: abi.TableSyscalls, Key: nr, Nr: nr})
	if a.LookupRet != 64 || a.Value.Count != 10 || a.Value.MeanNs != 1000 {
		t.Fatalf("table_lookup(syscalls, %d) = %d, %+v", nr, a.LookupRet, a.Value)
	}
	t.Logf("%s: every kfunc answered as documented", vmtest.KernelRelease())
}

// TestVMMergeIdentical: samples recorded on both CPUs, merged by the
// kernel (kfunc) and by Go from the mapped region, give the same numbers.
func TestVMMergeIdentical(t *testing.T) {
	r := vmRegion(t)
	run := probeRunner(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const nr = 402
	for cpu := 0; cpu < runtime.NumCPU() && cpu < 2; cpu++ {
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 50; i++ {
			run(ProbeArgs{Nr: nr, Record: 1, LatencyNs: uint64(1000*(cpu+1) + 37*i)})
		}
	}
	a := run(ProbeArgs{Table: abi.TableSyscalls, Key: nr, Nr: nr})
	st, err := client.FromRegion(r).Syscalls()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.NR != nr {
			continue
		}
		k := a.Value
		if s.Count != k.Count || s.SumNs != k.SumNs || s.M2 != k.M2 || s.MeanNs != k.MeanNs ||
			s.MinNs != k.MinNs || s.MaxNs != k.MaxNs || s.ThresholdNs != a.Threshold {
			t.Fatalf("Go %+v\nkernel %+v threshold %d", s, k, a.Threshold)
		}
		t.Logf("merged over CPUs: count %d mean %d M2 %d threshold %d (kernel and Go agree)", s.Count, s.MeanNs, s.M2, s.ThresholdNs)
		return
	}
	t.Fatalf("syscall %d not in the region", nr)
}

func TestVMKfuncsOverride(t *testing.T) {
	r := vmRegion(t)
	run := probeRunner(t)
	const nr = 401
	for i := 0; i < 3; i++ {
		run(ProbeArgs{Nr: nr, Record: 1, LatencyNs: 1000})
	}
	if err := client.FromRegion(r).SetSyscallOverride(nr, 500); err != nil {
		t.Fatal(err)
	}
	defer client.FromRegion(r).SetSyscallOverride(nr, 0)
	if a := run(ProbeArgs{Nr: nr, Record: 1, LatencyNs: 1000}); a.RecordRet != 1 || a.Threshold != 500 {
		t.Fatalf("with override 500: record_latency(1000) = %d, threshold %d; want 1, 500", a.RecordRet, a.Threshold)
	}
}

// stat reads the merged statistics of nr through the kfunc.
func stat(run func(ProbeArgs) ProbeArgs, nr uint32) (client.SyscallStat, uint64) {
	a := run(ProbeArgs{Table: abi.TableSyscalls, Key: uint64(nr), Nr: nr})
	v := a.Value
	return client.SyscallStat{NR: nr, Count: v.Count, MeanNs: v.MeanNs, M2: v.M2, SumNs: v.SumNs,
		StdDevNs: StdDev(abi.SyscallStat{Count: v.Count, M2: v.M2})}, a.Threshold
}

func TestVMTrackerOutliers(t *testing.T) {
	vmLoad(t)
	run := probeRunner(t)
	// Our syscalls come from this thread; the Go runtime's own threads
	// (sysmon) make nanosleeps too, so events are matched by tid.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := uint32(syscall.Gettid())
	restore := pinAll()
	tr, err := Start(Options{TGID: uint32(os.Getpid())})
	restore()
	if err != nil {
		t.Fatalf("tp_btf tracker: %v", err)
	}
	defer tr.Close()

	// Warm-up: K fast nanosleeps (1 µs asked) and K getppid.
	const K = 200
	pp0, _ := stat(run, nrGetppid)
	ns0, _ := stat(run, nrNanosleep)
	for i := 0; i < K; i++ {
		syscall.Getppid()
		ts := syscall.Timespec{Nsec: 1000}
		syscall.Nanosleep(&ts, nil)
	}
	pp, _ := stat(run, nrGetppid)
	if pp.Count-pp0.Count < K {
		t.Errorf("getppid count %d (+%d), want >= +%d", pp.Count, pp.Count-pp0.Count, K)
	}
	nsv, th := stat(run, nrNanosleep)
	ns := &nsv
	ns.ThresholdNs = th
	if ns.Count-ns0.Count < K || ns.ThresholdNs == 0 {
		t.Fatalf("nanosleep stats after %d calls: %+v", K, ns)
	}
	// The same statistics, read by Go from the mapped region.
	if r, err := shm.Open(shm.DevicePath, shm.Options{AllowStale: true}); err != nil {
		t.Errorf("open region: %v", err)
	} else {
		st, err := client.FromRegion(r).Syscalls()
		r.Close()
		if err != nil {
			t.Errorf("read syscalls: %v", err)
		}
		for _, s := range st {
			if s.NR == nrGetppid && s.Count < pp.Count {
				t.Errorf("region: getppid count %d < %d", s.Count, pp.Count)
			}
		}
	}
	t.Logf("nanosleep: count %d mean %d ns sd %d ns threshold %d ns", ns.Count, ns.MeanNs, ns.StdDevNs, ns.ThresholdNs)
	drain(tr)

	// A slow nanosleep, far above the learned threshold: an outlier.
	slow := time.Duration(ns.ThresholdNs)*4 + 50*time.Millisecond
	ts := syscall.NsecToTimespec(int64(slow))
	syscall.Nanosleep(&ts, nil)
	ev := find(t, tr, tid, nrNanosleep, 2*time.Second)
	if ev == nil {
		c, _ := tr.Counters()
		t.Fatalf("slow nanosleep (%v) not reported; counters %+v", slow, c)
	}
	if ev.Latency < slow || ev.PID != uint32(os.Getpid()) {
		t.Errorf("outlier %+v, want latency >= %v and our pid", ev, slow)
	}
	t.Logf("outlier: %s pid %d %s %v > %v", ev.Comm, ev.PID, SyscallName(ev.NR), ev.Latency, ev.Threshold)

	// Fast ones are not outliers: of 50 fast nanosleeps, only those that
	// really exceeded the threshold (TCG hiccups) may be reported.
	drain(tr)
	for i := 0; i < 50; i++ {
		ts := syscall.Timespec{Nsec: 1000}
		syscall.Nanosleep(&ts, nil)
	}
	reported := 0
	for {
		ev := find(t, tr, tid, nrNanosleep, 200*time.Millisecond)
		if ev == nil {
			break
		}
		reported++
		t.Logf("fast nanosleep reported: %v (threshold after it %v)", ev.Latency, ev.Threshold)
	}
	if reported > 5 {
		t.Errorf("%d of 50 fast nanosleeps reported as outliers", reported)
	}
	t.Logf("fast nanosleeps reported: %d of 50", reported)

	// An override far above the slow sleep: no longer an outlier.
	r := vmRegion(t)
	if err := client.FromRegion(r).SetSyscallOverride(nrNanosleep, uint64(time.Hour)); err != nil {
		t.Fatal(err)
	}
	defer client.FromRegion(r).SetSyscallOverride(nrNanosleep, 0)
	drain(tr)
	syscall.Nanosleep(&ts, nil)
	if ev := find(t, tr, tid, nrNanosleep, 500*time.Millisecond); ev != nil {
		t.Errorf("with an override of 1h, %+v was still reported", ev)
	}
	// And an override of 1 ns makes a fast one an outlier.
	client.FromRegion(r).SetSyscallOverride(nrNanosleep, 1)
	ts1 := syscall.Timespec{Nsec: 1000}
	syscall.Nanosleep(&ts1, nil)
	if ev := find(t, tr, tid, nrNanosleep, 2*time.Second); ev == nil || ev.Threshold != 1 {
		t.Errorf("with an override of 1 ns, got %+v, want an outlier with threshold 1", ev)
	}
}

func drain(tr *Tracker) {
	for {
		tr.SetDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := tr.Read(); err != nil {
			return
		}
	}
}

func find(t *testing.T, tr *Tracker, tid, nr uint32, d time.Duration) *Event {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		tr.SetDeadline(end)
		ev, err := tr.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.NR == nr && ev.TID == tid {
			return &ev
		}
	}
	return nil
}

// TestVMTrackerOverhead logs the cost of a getppid without and with the
// tracker attached (every syscall then goes through two tp_btf programs and
// bpf_kushm_record_latency). Under qemu TCG the absolute numbers are
// inflated; the ratio is the figure of interest.
func TestVMTrackerOverhead(t *testing.T) {
	vmLoad(t)
	const n = 20000
	measure := func() time.Duration {
		start := time.Now()
		for i := 0; i < n; i++ {
			syscall.Getppid()
		}
		return time.Since(start) / n
	}
	measure()
	base := measure()
	restore := pinAll()
	tr, err := Start(Options{TGID: uint32(os.Getpid())})
	restore()
	if err != nil {
		t.Fatal(err)
	}
	with := measure()
	c, _ := tr.Counters()
	tr.Close()
	t.Logf("getppid: %v without, %v with the tracker (+%v per syscall); counters %+v", base, with, with-base, c)
	if c.Errors != 0 {
		t.Errorf("record_latency failed %d times", c.Errors)
	}
}
