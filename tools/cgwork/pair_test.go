// SPDX-License-Identifier: Apache-2.0

package cgwork

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	Main()
	os.Exit(m.Run())
}

// TestPair: each side runs in its own cgroup, and a round of n trips
// switches each side out n times at least (both share one CPU, so each
// waits for the other once a trip: it blocks on its read, or the other
// side, woken by its write, preempts it); a second round reuses the same
// processes.
func TestPair(t *testing.T) {
	c := NewCgroups(t)
	a, _ := c.Mkdir(fmt.Sprintf("kushm-pair-a-%d", os.Getpid()))
	b, _ := c.Mkdir(fmt.Sprintf("kushm-pair-b-%d", os.Getpid()))
	p, err := StartPair(a, b, 0)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			p.Close()
		}
	}()
	const n = 2000
	sw0 := [2]int{switches(t, p.a.Process.Pid), switches(t, p.b.Process.Pid)}
	for round := 0; round < 2; round++ {
		d, err := p.Trips(n)
		if err != nil {
			t.Fatal(err)
		}
		if d <= 0 {
			t.Fatalf("round %d: %v", round, d)
		}
	}
	for i, pid := range []int{p.a.Process.Pid, p.b.Process.Pid} {
		if got := switches(t, pid) - sw0[i]; got < 2*n {
			t.Errorf("side %d: switched out %d times in 2 rounds of %d trips, want >= %d", i, got, n, 2*n)
		}
		cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if err != nil {
			t.Fatal(err)
		}
		want := "0::" + strings.TrimPrefix([]string{a, b}[i], c.Mount) + "\n"
		if !strings.Contains(string(cg), want) {
			t.Errorf("side %d: /proc/%d/cgroup = %q, want a line %q", i, pid, cg, want)
		}
	}
	closed = true
	if err := p.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// switches is the context switches (voluntary and not) of process pid's
// threads, summed (/proc/pid/task/*/status).
func switches(t *testing.T, pid int) int {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, task.Name()))
		if err != nil {
			continue // the thread exited
		}
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.HasSuffix(k, "voluntary_ctxt_switches") {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				sum += n
			}
		}
	}
	return sum
}
