package vmtest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseConsole(t *testing.T) {
	console := `[    0.000000] Linux version 6.1.0
KUSHM-VMTEST: KERNEL 6.1.0-56-cloud-amd64 ncpus 2
KUSHM-VMTEST: BEGIN internal_kmod
=== RUN   TestVMX
--- PASS: TestVMX (0.01s)
[   3.1] kushm: region of 663552 bytes KUSHM-VMTEST: END internal_kmod rc=0
KUSHM-VMTEST: BEGIN tracker
--- FAIL: TestVMY (0.01s)
KUSHM-VMTEST: END tracker rc=1
KUSHM-VMTEST: DMESG-BEGIN
[    1.0] kushm: loaded
[    2.0] WARNING: CPU: 1 PID: 77 at mm/vmalloc.c:1 foo+0x1/0x2
KUSHM-VMTEST: DMESG-END
KUSHM-VMTEST: DONE rc=1
`
	g := parseConsole(strings.NewReader(console))
	if !g.Done || g.Exit != 1 || len(g.Packages) != 2 {
		t.Fatalf("parse: %+v", g)
	}
	if p := g.Packages[0]; p.Name != "internal_kmod" || !p.Passed() || !strings.Contains(p.Output, "--- PASS: TestVMX") {
		t.Errorf("package 0: %+v", p)
	}
	if p := g.Packages[1]; p.Name != "tracker" || p.Passed() {
		t.Errorf("package 1: %+v", p)
	}
	c := Complaints(g.Dmesg)
	if len(c) != 1 || !strings.Contains(c[0], "WARNING: CPU: 1") {
		t.Errorf("complaints %q", c)
	}
}

func TestParseConsoleCrash(t *testing.T) {
	g := parseConsole(strings.NewReader("KUSHM-VMTEST: BEGIN p\n=== RUN TestVMZ\n[ 5.0] BUG: kernel NULL pointer dereference\n"))
	if g.Done || len(g.Packages) != 1 || g.Packages[0].Exit != -1 {
		t.Fatalf("parse: %+v", g)
	}
	if c := Complaints(g.Packages[0].Output); len(c) != 1 {
		t.Errorf("complaints %q", c)
	}
}

func TestComplaints(t *testing.T) {
	for _, l := range []string{
		"WARNING: CPU: 0 PID: 1 at kernel/x.c:1",
		"BUG: unable to handle page fault for address: 0",
		"Oops: 0000 [#1] PREEMPT SMP NOPTI",
		"Call Trace:",
		"general protection fault, probably for non-canonical address",
		"UBSAN: shift-out-of-bounds in foo.c",
		"rcu: INFO: rcu_sched detected stalls on CPUs/tasks:",
		"watchdog: BUG: soft lockup - CPU#0 stuck for 22s!",
		"INFO: task kworker/0:1:12 blocked for more than 120 seconds.",
		// PREEMPT_RT and lockdep
		"BUG: sleeping function called from invalid context at kernel/locking/spinlock_rt.c:48",
		"sleeping function called from invalid context at kernel/locking/spinlock_rt.c:48",
		"BUG: scheduling while atomic: kworker/0:1/12/0x00000002",
		"scheduling while atomic: kworker/0:1/12/0x00000002",
		"BUG: Invalid wait context",
		"WARNING: possible circular locking dependency detected",
		"possible recursive locking detected",
		"inconsistent {HARDIRQ-ON-W} -> {IN-HARDIRQ-W} usage. inconsistent lock state",
		"INFO: possible irq lock inversion dependency detected",
		"INFO: trying to register non-static key.",
		"DEBUG_LOCKS_WARN_ON(1)",
		"suspicious RCU usage.",
	} {
		if len(Complaints(l)) != 1 {
			t.Errorf("%q not a complaint", l)
		}
	}
	for _, l := range []string{
		"kushm: loading out-of-tree module taints kernel.",
		"kushm: module verification failed: signature and/or required key missing - tainting kernel",
		"clocksource: Switched to clocksource tsc",
		"sched: RT throttling activated",
		"Preemptible hierarchical RCU implementation.",
	} {
		if c := Complaints(l); len(c) != 0 {
			t.Errorf("%q taken for a complaint", l)
		}
	}
}

// TestCPIO checks the archive against the newc format the kernel reads.
func TestCPIO(t *testing.T) {
	var buf bytes.Buffer
	c := newCPIO(&buf)
	c.chardev("dev/console", 0o600, 5, 1)
	c.file("init", 0o755, []byte("#!/bin/sh\n"))
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if len(b)%4 != 0 {
		t.Fatalf("archive length %d not 4-aligned", len(b))
	}
	var names []string
	for off := 0; off < len(b); {
		h := string(b[off : off+110])
		if h[:6] != "070701" {
			t.Fatalf("bad magic at %d: %q", off, h[:6])
		}
		var f [13]uint64
		for i := range f {
			for _, ch := range h[6+8*i : 14+8*i] {
				f[i] = f[i]*16 + uint64(strings.IndexRune("0123456789abcdef", ch))
			}
		}
		size, namesize := int(f[6]), int(f[11])
		name := string(b[off+110 : off+110+namesize-1])
		names = append(names, name)
		off += 110 + namesize
		off += pad4(off)
		off += size
		off += pad4(off)
		if name == "TRAILER!!!" {
			break
		}
		if name == "dev/console" && (f[1]&0o170000 != modeChr || f[9] != 5 || f[10] != 1) {
			t.Errorf("dev/console: mode %o rdev %d:%d", f[1], f[9], f[10])
		}
	}
	if got := strings.Join(names, " "); got != "dev dev/console init TRAILER!!!" {
		t.Errorf("entries %q", got)
	}
}

func TestLoadKernel(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadKernel(dir, "6.1"); err == nil {
		t.Fatal("LoadKernel without an env file succeeded")
	}
	img := filepath.Join(dir, "vmlinuz")
	kdir := filepath.Join(dir, "kdir")
	os.MkdirAll(kdir, 0o755)
	os.WriteFile(img, nil, 0o644)
	os.WriteFile(filepath.Join(kdir, "Makefile"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "6.1.env"), []byte("# x\nKVER=6.1.0-1-cloud-amd64\nVMLINUZ="+img+"\nKDIR="+kdir+"\nCC=gcc-12\n"), 0o644)
	k, err := LoadKernel(dir, "6.1")
	if err != nil || k.KVer != "6.1.0-1-cloud-amd64" || k.CC != "gcc-12" {
		t.Fatalf("LoadKernel = %+v, %v", k, err)
	}
}

func TestRequireSkipsOnHost(t *testing.T) {
	if InGuest() {
		t.Skip("inside the guest")
	}
	ok := t.Run("inner", func(t *testing.T) {
		Require(t)
		t.Fatal("Require did not skip on the host")
	})
	if !ok {
		t.Fatal("inner test failed")
	}
}

// Complaints the kernel logged before /init started (a boot-time RCU stall
// of a starved TCG guest) are kept apart; those after it fail the run.
func TestSplitBoot(t *testing.T) {
	console := "KUSHM-VMTEST: KERNEL 6.12.117+deb12-cloud-amd64 ncpus 2 uptime 61.25\n" +
		markDmesgBegin + "\n" +
		"[   54.429181] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:\n" +
		"[   54.572218] Call Trace:\n" +
		"[   70.000001] WARNING: CPU: 1 PID: 99 at kmod/kushm_procs.c:1 probe_switch\n" +
		markDmesgEnd + "\n" + markDone + "rc=0\n"
	g := parseConsole(strings.NewReader(console))
	if g.Uptime != 61.25 {
		t.Fatalf("uptime %v, want 61.25", g.Uptime)
	}
	run, boot := SplitBoot(Complaints(g.Dmesg), g.Uptime)
	if len(run) != 1 || !strings.Contains(run[0], "WARNING") || len(boot) != 2 {
		t.Fatalf("run %q, boot %q", run, boot)
	}
	// Unknown uptime: everything counts.
	if run, _ := SplitBoot(Complaints(g.Dmesg), 0); len(run) != 3 {
		t.Fatalf("without an uptime: %q", run)
	}
}
