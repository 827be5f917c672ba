package provider

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/userside/client"
)

// unprivResult is what the unprivileged helper reports.
type unprivResult struct {
	Unavailable []Unavailable
	PageFaults  bool // its own page faults are in the procs table
	Err         string
}

func unprivHelper() {
	var res unprivResult
	defer func() {
		json.NewEncoder(os.Stdout).Encode(res)
		os.Exit(0)
	}()
	path := filepath.Join(os.Getenv("KUSHM_DIR"), "kushm")
	p, err := New(Config{Path: path, Interval: 10 * time.Millisecond, ProcInterval: 10 * time.Millisecond, Watch: Watch{PIDs: []int{os.Getpid()}}})
	if err != nil {
		res.Err = err.Error()
		return
	}
	defer p.Close()
	res.Unavailable = p.Unavailable()
	p.Sample()
	c, err := client.Open(client.Options{Path: path})
	if err != nil {
		res.Err = err.Error()
		return
	}
	defer c.Close()
	if pr, err := c.Process(os.Getpid()); err == nil {
		res.PageFaults = pr.Has(int(pmu.SW_PAGE_FAULTS)) && pr.Counters[pmu.SW_PAGE_FAULTS] > 0
	}
}

// TestUnprivileged runs the provider as an unprivileged user (nobody):
// with perf_event_paranoid ≥ 1 per-CPU counters are n/a with the cause
// and the fix, and per-process stats from /proc still work.
func TestUnprivileged(t *testing.T) {
	if os.Getenv("KUSHM_HELPER") == "unpriv" {
		unprivHelper()
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to an unprivileged user")
	}
	b, err := os.ReadFile("/proc/sys/kernel/perf_event_paranoid")
	if err != nil {
		t.Skip("no perf_event_paranoid:", err)
	}
	var paranoid int
	fmt.Sscan(string(b), &paranoid)
	// A copy of the test binary that nobody may execute, in a directory
	// nobody may write.
	dir, err := os.MkdirTemp("", "kushm-unpriv-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o777)
	exe := filepath.Join(dir, "provider.test")
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	dst, err := os.OpenFile(exe, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(dst, src)
	src.Close()
	dst.Close()
	cmd := exec.Command(exe, "-test.run=^TestUnprivileged$")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "KUSHM_HELPER=unpriv", "KUSHM_DIR="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("unprivileged helper: %v\n%s", err, out)
	}
	var res unprivResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	t.Logf("unprivileged: %d counters n/a, own page faults: %v", len(res.Unavailable), res.PageFaults)
	if res.Err != "" {
		t.Fatalf("unprivileged provider: %s", res.Err)
	}
	if !res.PageFaults {
		t.Error("per-process page faults missing for an unprivileged provider")
	}
	if paranoid < 1 {
		return
	}
	found := false
	for _, u := range res.Unavailable {
		if u.What == "SW_PAGE_FAULTS" {
			found = true
			if !strings.Contains(u.Cause, "paranoid") || !strings.Contains(u.Cause, "fix:") {
				t.Errorf("reason without the cause and the fix: %q", u.Cause)
			}
		}
	}
	if !found {
		t.Errorf("per-CPU page faults available to nobody with perf_event_paranoid %d", paranoid)
	}
}
