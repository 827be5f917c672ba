package provider

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/shm"
)

// TestControlFileAttacks: a member of the control file's group (uid 65534
// here, in the file's group) truncates, grows, floods and tries to replace
// the .ctl file of a running provider, and root replaces it with a FIFO;
// the provider keeps sampling and heart-beating, renews the file, and
// readers keep opening the region.
func TestControlFileAttacks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to act as another uid")
	}
	const nobody, group = 65534, 65534
	// A shared sticky directory, as /dev/shm is.
	dir, err := os.MkdirTemp("", "kushm-hostile")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777|os.ModeSticky)
	path := filepath.Join(dir, "kushm")
	var logs strings.Builder
	cfg := Config{Path: path, Interval: 20 * time.Millisecond, Watch: Watch{None: true}}
	cfg.Files.GID = group
	cfg.Logf = func(f string, a ...any) { fmt.Fprintf(&logs, f+"\n", a...) }
	p := newTest(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	ctl := path + ".ctl"
	as := func(uid int, script string) {
		t.Helper()
		cmd := exec.Command("/bin/sh", "-c", script)
		cmd.Env = []string{"CTL=" + ctl, "PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: group}}
		out, _ := cmd.CombinedOutput() // some attempts are meant to fail (EPERM)
		t.Logf("uid %d: %s: %s", uid, script, strings.TrimSpace(string(out)))
	}
	alive := func(what string) {
		t.Helper()
		time.Sleep(300 * time.Millisecond) // more than one control read
		select {
		case err := <-done:
			t.Fatalf("after %s the provider stopped: %v", what, err)
		default:
		}
		r, err := shm.Open(path, shm.Options{CheckOwner: true})
		if err != nil {
			t.Fatalf("after %s: open: %v", what, err)
		}
		defer r.Close()
		s, _ := r.Section(abi.SecNameControl)
		if s.Missing {
			t.Fatalf("after %s: control still missing: %s", what, s.MissingReason)
		}
		if st, err := os.Lstat(ctl); err != nil || !st.Mode().IsRegular() || st.Size() != int64(s.Size) {
			t.Fatalf("after %s: control file %v %v, want a regular file of %d bytes", what, st, err, s.Size)
		}
	}
	as(nobody, `truncate -s 0 "$CTL"`)
	alive("truncating to 0")
	as(nobody, `truncate -s 100 "$CTL"`)
	alive("truncating to 100 bytes")
	as(nobody, `truncate -s 1M "$CTL"`)
	alive("growing to 1 MiB")
	as(nobody, `mkfifo "$CTL.x" && mv -f "$CTL.x" "$CTL"; rm -f "$CTL.x"`)
	alive("a group member's rename over it")
	as(nobody, `for i in 1 2 3 4 5 6 7 8 9 10; do head -c 8192 /dev/urandom | dd of="$CTL" conv=notrunc status=none; done`)
	alive("flooding with random values")
	as(0, `rm -f "$CTL" && mkfifo "$CTL"`)
	alive("root replacing it with a FIFO")
	// Truncate in a tight loop while the provider runs.
	as(nobody, `i=0; while [ $i -lt 200 ]; do truncate -s 0 "$CTL"; truncate -s 8192 "$CTL"; i=$((i+1)); done`)
	alive("200 truncations in a loop")
	st := p.Stats()
	if st.CtlRenewed == 0 {
		t.Fatal("no control file was renewed")
	}
	if n := strings.Count(logs.String(), "\n"); n > 20 {
		t.Errorf("%d log lines: control messages are not rate-limited:\n%s", n, logs.String())
	}
	t.Logf("renewed %d times, %d refused values; log:\n%s", st.CtlRenewed, st.CtlRejected, logs.String())
}
