package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kushm/kushm/internal/modload"
	"github.com/kushm/kushm/tools/vmtest"
)

// TestVMOutliersCommand runs `kushm outliers` in the guest: after a warm-up
// of fast nanosleeps (recorded by the tracker it starts), a slow one is printed (comm, pid, syscall, latency,
// threshold); `kushm syscalls` then shows nanosleep's statistics.
func TestVMOutliersCommand(t *testing.T) {
	vmtest.Require(t)
	// Threads on one CPU while kernel text is live-patched (module load,
	// tracepoint enable): see tracker's pinAll (qemu MTTCG int3 race).
	restore := pinAll()
	defer restore()
	if !modload.Root("").Loaded() {
		if err := modload.Load(vmtest.ModulePath(), nil); err != nil {
			t.Fatalf("load module: %v", err)
		}
	}
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run([]string{"outliers", "--pid", strconv.Itoa(os.Getpid()), "--syscall", "nanosleep", "--count", "1", "--for", "20s"}, &out)
	}()
	time.Sleep(2 * time.Second) // the tracker attaches (usually)
	restore()
	// Warm-up batches of fast sleeps, each followed by one slow sleep,
	// until the command has seen its outlier: attaching may take longer
	// than the pause above on a loaded host, and a slow sleep made before
	// the tracker is attached is never reported.
	var err error
wait:
	for {
		for i := 0; i < 200; i++ {
			ts := syscall.Timespec{Nsec: 1000}
			syscall.Nanosleep(&ts, nil)
		}
		ts := syscall.NsecToTimespec(int64(300 * time.Millisecond))
		syscall.Nanosleep(&ts, nil)
		select {
		case err = <-done:
			break wait
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err != nil {
		t.Fatalf("kushm outliers: %v", err)
	}
	if !strings.Contains(out.String(), "nanosleep") || !strings.Contains(out.String(), "THRESHOLD") {
		t.Fatalf("kushm outliers printed:\n%s", out.String())
	}
	t.Logf("kushm outliers:\n%s", out.String())

	out.Reset()
	if err := run([]string{"syscalls"}, &out); err != nil {
		t.Fatalf("kushm syscalls: %v", err)
	}
	if !strings.Contains(out.String(), "nanosleep") {
		t.Fatalf("kushm syscalls printed:\n%s", out.String())
	}
	t.Logf("kushm syscalls:\n%s", out.String())
}

// pinAll moves every thread of this process to CPU 0; the returned
// function allows all CPUs again.
func pinAll() func() {
	var one, all unix.CPUSet
	one.Set(0)
	for i := 0; i < 1024; i++ {
		all.Set(i)
	}
	set := func(s *unix.CPUSet) {
		ents, _ := os.ReadDir("/proc/self/task")
		for _, e := range ents {
			if tid, err := strconv.Atoi(e.Name()); err == nil {
				unix.SchedSetaffinity(tid, s)
			}
		}
	}
	set(&one)
	return func() { set(&all) }
}
