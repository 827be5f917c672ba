package provider

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/userside/client"
)

// TestHelperProcess is the other process of the integration tests: the
// daemon (KUSHM_HELPER=daemon) or a process that touches pages
// (KUSHM_HELPER=touch). It is not a test on its own.
func TestHelperProcess(t *testing.T) {
	switch os.Getenv("KUSHM_HELPER") {
	case "daemon":
		uid := os.Geteuid()
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		defer stop()
		err := Serve(ctx, Config{
			Path: os.Getenv("KUSHM_REGION"), Interval: 20 * time.Millisecond, ProcInterval: 20 * time.Millisecond,
			Watch: Watch{UID: &uid},
		}, ServeOptions{Ready: func(*Provider) { fmt.Println("ready") }})
		if err != nil {
			fmt.Fprintln(os.Stderr, "daemon:", err)
			os.Exit(3)
		}
		os.Exit(0)
	case "touch":
		n, _ := strconv.Atoi(os.Getenv("KUSHM_PAGES"))
		in := bufio.NewReader(os.Stdin)
		fmt.Println("pid", os.Getpid())
		in.ReadString('\n')
		touchPages(t, n)
		fmt.Println("done")
		in.ReadString('\n') // until the test closes stdin
		os.Exit(0)
	}
}

type child struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startHelper(t *testing.T, kind string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v=false")
	cmd.Env = append(os.Environ(), append([]string{"KUSHM_HELPER=" + kind}, env...)...)
	cmd.Stderr = os.Stderr
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, in: in, out: bufio.NewReader(out)}
	t.Cleanup(func() {
		c.in.Close()
		c.cmd.Process.Kill()
		c.cmd.Wait()
	})
	return c
}

func (c *child) expect(t *testing.T, prefix string) string {
	t.Helper()
	line := make(chan string, 1)
	go func() {
		s, _ := c.out.ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case s := <-line:
		if !strings.HasPrefix(s, prefix) {
			t.Fatalf("helper said %q, want %q", s, prefix)
		}
		return s
	case <-time.After(20 * time.Second):
		t.Fatalf("helper did not say %q", prefix)
	}
	return ""
}

func startDaemon(t *testing.T, path string) *child {
	d := startHelper(t, "daemon", "KUSHM_REGION="+path)
	d.expect(t, "ready")
	return d
}

// poll retries f every 10 ms for up to 5 s.
func poll(t *testing.T, what string, f func() error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if err = f(); err == nil {
			return
		}
	}
	t.Fatalf("%s: %v", what, err)
}

func TestIntegrationDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	path := filepath.Join(t.TempDir(), "kushm")

	// A reader started before the daemon gets a clear error.
	_, err := client.Open(client.Options{Path: path})
	if !errors.Is(err, shm.ErrNoRegion) || !strings.Contains(err.Error(), "kushm serve") {
		t.Fatalf("reader before the daemon: %v", err)
	}

	d := startDaemon(t, path)
	c, err := client.Open(client.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if r, ok := c.Why(pmu.SW_PAGE_FAULTS.String()); ok {
		t.Skipf("software events not available: %s", r)
	}

	const pages = 2000
	w := startHelper(t, "touch", fmt.Sprintf("KUSHM_PAGES=%d", pages))
	pid, _ := strconv.Atoi(strings.TrimPrefix(w.expect(t, "pid "), "pid "))
	var before client.Proc
	poll(t, "toucher in the procs table", func() error {
		before, err = c.Process(pid)
		return err
	})
	p0, err := c.SamplePMU()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(w.in, "go")
	w.expect(t, "done")
	pf := int(pmu.SW_PAGE_FAULTS)
	poll(t, "page faults of the toucher", func() error {
		after, err := c.Process(pid)
		if err != nil {
			return err
		}
		if d := after.Counters[pf] - before.Counters[pf]; d < pages {
			return fmt.Errorf("+%d page faults for %d pages", d, pages)
		}
		return nil
	})
	poll(t, "page faults of all CPUs", func() error {
		p1, err := c.SamplePMU()
		if err != nil {
			return err
		}
		var sum uint64
		for i := range p1.Rows {
			dl := atomicarr.Diff(&p0.Rows[i], &p1.Rows[i])
			if dl.Valid&(1<<pf) != 0 {
				sum += dl.Diff[pf]
			}
		}
		if sum < pages {
			return fmt.Errorf("+%d page faults on all CPUs for %d pages", sum, pages)
		}
		return nil
	})

	// Clean shutdown: the region says "stopped".
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.cmd.Wait(); err != nil {
		t.Fatalf("daemon exit after SIGTERM: %v", err)
	}
	if _, err := client.Open(client.Options{Path: path}); !errors.Is(err, shm.ErrStaleProducer) || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("after SIGTERM: %v", err)
	}

	// Restart re-creates it; SIGKILL leaves a stale region that readers
	// recognise, and whose last data stays readable.
	d = startDaemon(t, path)
	c2, err := client.Open(client.Options{Path: path})
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	poll(t, "a sample of the restarted daemon", func() error {
		if _, ok := c2.Counter(0, pmu.SW_PAGE_FAULTS); !ok {
			return errors.New("no page faults on CPU 0 yet")
		}
		return nil
	})
	c2.Close()
	d.cmd.Process.Kill()
	d.cmd.Wait()
	poll(t, "stale after SIGKILL", func() error {
		_, err := client.Open(client.Options{Path: path})
		if errors.Is(err, shm.ErrStaleProducer) && strings.Contains(err.Error(), "no heartbeat") {
			return nil
		}
		return fmt.Errorf("open: %v", err)
	})
	old, err := client.Open(client.Options{Path: path, AllowStale: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := old.Counter(0, pmu.SW_PAGE_FAULTS); !ok {
		t.Error("last data of a dead daemon not readable")
	}
	old.Close()
	// A new daemon replaces the stale region.
	d = startDaemon(t, path)
	if _, err := client.Open(client.Options{Path: path}); err != nil {
		t.Fatalf("after replacing a stale region: %v", err)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.cmd.Wait()
}
