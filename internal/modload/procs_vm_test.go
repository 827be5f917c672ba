package modload

// Kernel tests of the procs table's lifetimes and names (issue 12): no
// row outlives its process, a reused pid starts from zero, rows carry the
// exec'd name. They run inside the qemu guest (make vmtest).

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/tools/vmtest"
)

const skipExitPath = "/sys/kernel/debug/kushm/procs_fault_skip_exit"

// procRow is one row of the procs table as readers see it.
type procRow struct {
	pid     uint64
	comm    string
	runtime uint64 // on-CPU ns, all CPUs
}

func commOf(data []byte) string {
	c := data[:16]
	if i := bytes.IndexByte(c, 0); i >= 0 {
		c = c[:i]
	}
	return string(c)
}

func rows(tab *rcuhash.Table) []procRow {
	var out []procRow
	vs := tab.ValueSize()
	tab.Range(func(e *rcuhash.Entry) bool {
		r := procRow{pid: e.Key, comm: commOf(e.Data)}
		for j := 0; j < tab.NSlots(); j++ {
			r.runtime += binary.LittleEndian.Uint64(e.Slots[j*vs+8*abi.ProcCounterRuntime:])
		}
		out = append(out, r)
		return true
	})
	return out
}

func row(tab *rcuhash.Table, pid int) (procRow, error) {
	data := make([]byte, tab.DataSize())
	slots := make([]byte, tab.NSlots()*tab.ValueSize())
	if err := tab.Read(uint64(pid), data, slots); err != nil {
		return procRow{}, err
	}
	r := procRow{pid: uint64(pid), comm: commOf(data)}
	for j := 0; j < tab.NSlots(); j++ {
		r.runtime += binary.LittleEndian.Uint64(slots[j*tab.ValueSize()+8*abi.ProcCounterRuntime:])
	}
	return r, nil
}

// alive reports whether pid is a process that has not exited (a zombie
// has exited: it never runs again).
func alive(pid uint64) bool {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(pid, 10) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}

// deadRows returns the rows whose process is gone: absent from /proc (or a
// zombie) and still in the table when looked at again after that, so that
// a process exiting while we look is not counted.
func deadRows(tab *rcuhash.Table) []procRow {
	var dead []procRow
	for _, r := range rows(tab) {
		if alive(r.pid) {
			continue
		}
		time.Sleep(5 * time.Millisecond)
		if _, err := row(tab, int(r.pid)); err == nil && !alive(r.pid) {
			dead = append(dead, r)
		}
	}
	return dead
}

// churn forks and reaps short-lived processes at full speed until stop is
// called, which also waits for every child to be reaped: busybox sh loops
// of subshells (fork, no exec) and of /bin/true (fork + exec).
func churn(t *testing.T) (stop func()) {
	t.Helper()
	// Orphans of the killed shells come to us, and we reap them.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	var cmds []*exec.Cmd
	for _, script := range []string{
		"while :; do (:); done",
		"while :; do /bin/true; /bin/true & wait; done",
	} {
		c := exec.Command("/bin/sh", "-c", script)
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	return func() {
		for _, c := range cmds {
			syscall.Kill(-c.Process.Pid, syscall.SIGKILL) // the whole group
		}
		for _, c := range cmds {
			c.Wait()
		}
		for {
			var ws unix.WaitStatus
			if _, err := unix.Wait4(-1, &ws, unix.WALL, nil); err != nil {
				break // ECHILD: every child reaped
			}
		}
		unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	}
}

// Load and unload the module ten times while processes are forked and
// reaped at full speed (issue 12: 2-36 rows per load outlived their
// process on 6.1, 4-12 on 6.12, when sched_switch was hooked before
// sched_process_exit). The sweep is slowed to once a minute so that the
// rows are checked as the probes alone leave them: none may be dead.
func TestVMProcsNoLeakUnderChurn(t *testing.T) {
	vmtest.Require(t)
	const loads = 10
	total := 0
	for i := 0; i < loads; i++ {
		stop := churn(t)
		time.Sleep(20 * time.Millisecond)
		if err := Load(vmtest.ModulePath(), map[string]string{"procs_sweep_ms": "60000"}); err != nil {
			stop()
			t.Fatalf("load %d: %v", i, err)
		}
		time.Sleep(400 * time.Millisecond)
		stop()
		r, err := shm.Open(devPath, shm.Options{})
		if err != nil {
			Unload()
			t.Fatalf("load %d: open: %v", i, err)
		}
		tab, err := rcuhash.Open(r, abi.SecNameProcs)
		if err != nil {
			r.Close()
			Unload()
			t.Fatal(err)
		}
		st := tab.Stats()
		dead := deadRows(tab)
		total += len(dead)
		t.Logf("load %d: %d inserts, %d deletes, %d live rows, %d of them dead, %d swept", i, st.Inserts, st.Deletes, st.Count, len(dead), st.Swept)
		if st.Swept != 0 {
			t.Errorf("load %d: %d rows swept: the probes left rows of processes that were gone", i, st.Swept)
		}
		for _, d := range dead {
			t.Errorf("load %d: row of pid %d (%q, %d ns on CPU) outlived its process", i, d.pid, d.comm, d.runtime)
		}
		if st.Deletes == 0 {
			t.Errorf("load %d: no process came and went: the churn did not run", i)
		}
		r.Close()
		if err := Unload(); err != nil {
			t.Fatalf("unload %d: %v", i, err)
		}
	}
	t.Logf("%d loads under churn: %d rows outlived their process", loads, total)
}

func setSkipExit(t *testing.T, on bool) {
	t.Helper()
	v := "N"
	if on {
		v = "Y"
	}
	if err := os.WriteFile(skipExitPath, []byte(v), 0); err != nil {
		t.Fatalf("fault injection: %v", err)
	}
}

// spin runs a busybox sh busy loop for about d and returns its pid once
// it has been killed and reaped.
func spin(t *testing.T, d time.Duration) int {
	t.Helper()
	c := exec.Command("/bin/sh", "-c", "while :; do :; done")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(d)
	c.Process.Kill()
	c.Wait()
	return c.Process.Pid
}

// A process whose exit the table missed (fault injection: the leak the
// issue reported) leaves its row; a new process given the same pid
// through ns_last_pid must start from zero, under its own name, and the
// stale row is counted as swept.
func TestVMProcsPidReuse(t *testing.T) {
	vmtest.Require(t)
	load(t, map[string]string{"procs_sweep_ms": "60000"})
	r := open(t, devPath, shm.Options{})
	tab, err := rcuhash.Open(r, abi.SecNameProcs)
	if err != nil {
		t.Fatal(err)
	}
	setSkipExit(t, true)
	pid := spin(t, 500*time.Millisecond)
	setSkipExit(t, false)
	old, err := row(tab, pid)
	if err != nil {
		t.Fatalf("the leaked row of pid %d: %v", pid, err)
	}
	if alive(uint64(pid)) || old.runtime == 0 {
		t.Fatalf("pid %d: alive %v, leaked row %+v: want a dead process with run time", pid, alive(uint64(pid)), old)
	}
	swept0 := tab.Stats().Swept
	// Reuse the pid: the next fork gets ns_last_pid + 1 (Go's own threads
	// may take it first: retry).
	exe := copyBusybox(t, "busyboxreuse")
	var c *exec.Cmd
	for try := 0; try < 50; try++ {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
			t.Fatalf("ns_last_pid: %v", err)
		}
		c = &exec.Cmd{Path: exe, Args: []string{exe, "sleep", "1"}}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		if c.Process.Pid == pid {
			break
		}
		c.Process.Kill()
		c.Wait()
		c = nil
	}
	if c == nil {
		t.Fatalf("could not get pid %d again through ns_last_pid", pid)
	}
	defer c.Wait()
	var got procRow
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got, err = row(tab, pid); err == nil && got.comm == "busyboxreuse" {
			break
		}
	}
	t.Logf("pid %d: dead process's row %+v; new process's row %+v", pid, old, got)
	if got.comm != "busyboxreuse" {
		t.Fatalf("pid %d reused: row %+v (%v), want the new process's name", pid, got, err)
	}
	if got.runtime >= old.runtime {
		t.Errorf("pid %d reused: new row has %d ns on CPU, the dead process had %d: counters carried over", pid, got.runtime, old.runtime)
	}
	if sw := tab.Stats().Swept; sw != swept0+1 {
		t.Errorf("swept %d, want %d (the stale row replaced)", sw, swept0+1)
	}
}

// Rows whose exit was missed are removed by the sweep within one period
// (plus the time of a sweep under TCG), and counted.
func TestVMProcsSweep(t *testing.T) {
	vmtest.Require(t)
	const period = 200 * time.Millisecond
	load(t, map[string]string{"procs_sweep_ms": strconv.Itoa(int(period / time.Millisecond))})
	r := open(t, devPath, shm.Options{})
	tab, err := rcuhash.Open(r, abi.SecNameProcs)
	if err != nil {
		t.Fatal(err)
	}
	swept0 := tab.Stats().Swept
	setSkipExit(t, true)
	const n = 20
	for i := 0; i < n; i++ {
		// sleep blocks: the child is switched out, hence inserted.
		if err := exec.Command("/bin/sleep", "0.01").Run(); err != nil {
			setSkipExit(t, false)
			t.Fatal(err)
		}
	}
	setSkipExit(t, false)
	time.Sleep(2 * period)
	var dead []procRow
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(period / 4) {
		if dead = deadRows(tab); len(dead) == 0 || time.Now().After(deadline) {
			break
		}
	}
	st := tab.Stats()
	t.Logf("after %d missed exits: %d rows swept, %d dead rows left", n, st.Swept-swept0, len(dead))
	if len(dead) != 0 {
		t.Errorf("dead rows left after the sweep: %+v", dead)
	}
	if st.Swept-swept0 < n {
		t.Errorf("swept %d rows, want >= %d (one per missed exit)", st.Swept-swept0, n)
	}
}

// copyBusybox copies the static busybox under a new name (starting with
// "busybox", so that it runs the applet of its first argument) in a
// temporary directory: a static binary whose comm is that name.
func copyBusybox(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	p := t.TempDir() + "/" + name
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// procComm is pid's comm as /proc shows it.
func procComm(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return strings.TrimSpace(string(b))
}

// waitComm polls pid's row until it shows want or the time is up, and
// returns the last name seen.
func waitComm(tab *rcuhash.Table, pid int, want string, within time.Duration) (string, error) {
	var got procRow
	var err error
	for deadline := time.Now().Add(within); ; time.Sleep(5 * time.Millisecond) {
		got, err = row(tab, pid)
		if err == nil && got.comm == want || time.Now().After(deadline) {
			return got.comm, err
		}
	}
}

// Processes started by fork + exec, from Go and from busybox sh, show the
// exec'd name within one sampling interval (issue 12: 5-9 of 10 showed
// their parent's name); a process that execs twice shows the second one.
func TestVMProcsExecNames(t *testing.T) {
	vmtest.Require(t)
	const interval = 100 * time.Millisecond
	load(t, map[string]string{"interval_ms": strconv.Itoa(int(interval / time.Millisecond))})
	r := open(t, devPath, shm.Options{})
	tab, err := rcuhash.Open(r, abi.SecNameProcs)
	if err != nil {
		t.Fatal(err)
	}
	// The exec'd program is busybox's sleep applet under another name (a
	// copy of the static busybox). Its exec is complete once it sleeps in
	// nanosleep (/proc shows the new name earlier, in the middle of the
	// exec): from then on its row must show the new name within one
	// interval. A process not switched out yet has no row, and the row it
	// gets has the name.
	exe := copyBusybox(t, "busyboxexecnam")
	const want = "busyboxexecnam"
	check := func(what string, pid int, want string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !sleeping(pid) && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		if c := procComm(pid); !sleeping(pid) || c != want {
			t.Fatalf("%s: pid %d (%q) never slept in nanosleep after its exec, want %q", what, pid, c, want)
		}
		got, err := waitComm(tab, pid, want, interval)
		if errors.Is(err, shm.ErrNotFound) {
			got, err = waitComm(tab, pid, want, 2*time.Second)
		}
		if got != want || err != nil {
			t.Errorf("%s: pid %d shows %q (%v) one interval after its exec, want %q", what, pid, got, err, want)
		}
	}
	var cmds []*exec.Cmd
	defer func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	}()

	// From Go (fork + exec), ten times.
	for i := 0; i < 10; i++ {
		c := &exec.Cmd{Path: exe, Args: []string{exe, "sleep", "3"}}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
		check("Go fork+exec", c.Process.Pid, want)
	}

	// From busybox sh: ten children forked by sh exec the copy.
	sh := exec.Command("/bin/sh", "-c", `for i in 1 2 3 4 5 6 7 8 9 10; do (exec `+exe+` sleep 3) & echo $!; done; wait`)
	out, _ := sh.StdoutPipe()
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	cmds = append(cmds, sh)
	sc := bufio.NewScanner(out)
	for i := 0; i < 10; i++ {
		if !sc.Scan() {
			t.Fatalf("sh printed %d pids of 10: %v", i, sc.Err())
		}
		p, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
		if err != nil {
			t.Fatalf("sh printed %q, want a pid", sc.Text())
		}
		check("busybox sh fork+exec", p, want)
	}

	// Two execs: Go -> sh (first name; it reads stdin) -> the copy.
	c := exec.Command("/bin/sh", "-c", "read x; exec "+exe+" sleep 3")
	in, _ := c.StdinPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	cmds = append(cmds, c)
	for deadline := time.Now().Add(10 * time.Second); procSyscall(c.Process.Pid) != 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond) // until sh blocks in read(2)
	}
	if got, err := waitComm(tab, c.Process.Pid, "sh", 2*time.Second); got != "sh" {
		t.Errorf("first exec: pid %d shows %q (%v), want sh", c.Process.Pid, got, err)
	}
	in.Write([]byte("go\n"))
	check("second exec", c.Process.Pid, want)
}

// procSyscall is the system call pid is blocked in (/proc/PID/syscall),
// or -1.
func procSyscall(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/syscall")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return -1
	}
	return n
}

// sleeping reports whether pid sleeps in nanosleep or clock_nanosleep.
func sleeping(pid int) bool {
	n := procSyscall(pid)
	return n == int(unix.SYS_NANOSLEEP) || n == int(unix.SYS_CLOCK_NANOSLEEP)
}

// A process between exit and reap (a zombie) when the module loads never
// gets a row: it never runs again (R3 in kmod/kushm_procs.c).
func TestVMProcsZombieAtLoad(t *testing.T) {
	vmtest.Require(t)
	if Root("").Loaded() {
		if err := Unload(); err != nil {
			t.Fatal(err)
		}
	}
	c := exec.Command("/bin/sh", "-c", "i=0; while [ $i -lt 200 ]; do i=$((i+1)); done")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	pid := c.Process.Pid
	defer c.Wait()
	for deadline := time.Now().Add(10 * time.Second); alive(uint64(pid)) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if alive(uint64(pid)) {
		t.Fatalf("child %d did not exit", pid)
	}
	load(t, map[string]string{"procs_sweep_ms": "100"})
	r := open(t, devPath, shm.Options{})
	tab, err := rcuhash.Open(r, abi.SecNameProcs)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // switches and sweeps
	if rw, err := row(tab, pid); !errors.Is(err, shm.ErrNotFound) {
		t.Fatalf("zombie %d at load: row %+v (%v), want none", pid, rw, err)
	}
	if st := tab.Stats(); st.Swept != 0 {
		t.Errorf("swept %d, want 0", st.Swept)
	}
}
