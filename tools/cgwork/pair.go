// SPDX-License-Identifier: Apache-2.0

package cgwork

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/kushm/kushm/pmu"
)

// PairEnv is the environment variable a test binary checks (Main) to be
// one side of a Pair instead of running its tests: "side,cpu".
const PairEnv = "KUSHM_CGWORK_PAIR"

// Pair is a pipe ping-pong between two processes, each started in its
// own cgroup, both pinned to one CPU: every switch between them is a
// switch between cgroups, the worst case of a per-cgroup switch hook
// (PingPongOn's two threads share one cgroup). A round trip is two
// context switches, as with PingPongOn. The processes stay up between
// rounds (Trips), so a round pays no process start.
type Pair struct {
	a, b *exec.Cmd
	ctl  io.WriteCloser // a's stdin: a round's trip count, a line each
	res  *bufio.Reader  // a's stdout: the round's time in ns, a line each
}

// StartPair starts the two sides, in cgroup directories dirA and dirB,
// pinned to cpu. Close ends them.
func StartPair(dirA, dirB string, cpu int) (*Pair, error) {
	ab, err := pipe() // a writes, b reads
	if err != nil {
		return nil, err
	}
	defer closeAll(ab[:])
	ba, err := pipe() // b writes, a reads
	if err != nil {
		return nil, err
	}
	defer closeAll(ba[:])
	p := &Pair{}
	a, fa, err := command(dirA, fmt.Sprintf("%s=0,%d", PairEnv, cpu))
	if err != nil {
		return nil, err
	}
	defer fa.Close()
	a.ExtraFiles = []*os.File{ba[0], ab[1]} // fd 3: in, fd 4: out
	if p.ctl, err = a.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := a.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.res = bufio.NewReader(out)
	b, fb, err := command(dirB, fmt.Sprintf("%s=1,%d", PairEnv, cpu))
	if err != nil {
		return nil, err
	}
	defer fb.Close()
	b.ExtraFiles = []*os.File{ab[0], ba[1]}
	if err := b.Start(); err != nil {
		return nil, fmt.Errorf("start ping-pong side in %s: %w", dirB, err)
	}
	p.b = b
	if err := a.Start(); err != nil {
		b.Process.Kill()
		b.Wait()
		return nil, fmt.Errorf("start ping-pong side in %s: %w", dirA, err)
	}
	p.a = a
	return p, nil
}

// Trips runs n round trips and returns how long they took, as the first
// side timed them (its loop only).
func (p *Pair) Trips(n int) (time.Duration, error) {
	if _, err := fmt.Fprintf(p.ctl, "%d\n", n); err != nil {
		return 0, fmt.Errorf("ping-pong pair: %w", err)
	}
	l, err := p.res.ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("ping-pong pair: no result: %w", err)
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(l), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("ping-pong pair: result %q: %w", l, err)
	}
	return time.Duration(ns), nil
}

// Close ends both sides (the first sees the end of its input and exits;
// the second then sees the end of the pipe) and waits for them.
func (p *Pair) Close() error {
	p.ctl.Close()
	return errors.Join(p.a.Wait(), p.b.Wait())
}

// pairMain is one side of a Pair (v: "side,cpu"); it returns the exit
// status.
func pairMain(v string) int {
	var side, cpu int
	if _, err := fmt.Sscanf(v, "%d,%d", &side, &cpu); err != nil {
		fmt.Fprintln(os.Stderr, "cgwork pair:", err)
		return 2
	}
	runtime.LockOSThread()
	if _, err := pmu.PinToCPU(cpu); err != nil {
		fmt.Fprintln(os.Stderr, "cgwork pair:", err)
		return 1
	}
	// The pipes StartPair passed, blocking: reads and writes are plain
	// system calls, no poller.
	in, out := os.NewFile(3, "ping-pong in"), os.NewFile(4, "ping-pong out")
	buf := []byte{0}
	if side == 1 {
		// Echo until the other side is gone.
		for {
			if n, err := in.Read(buf); n != 1 || err != nil {
				return 0
			}
			if _, err := out.Write(buf); err != nil {
				return 0
			}
		}
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		n, err := strconv.Atoi(sc.Text())
		if err != nil {
			fmt.Fprintln(os.Stderr, "cgwork pair:", err)
			return 2
		}
		t0 := time.Now()
		for i := 0; i < n; i++ {
			if _, err := out.Write(buf); err != nil {
				fmt.Fprintln(os.Stderr, "cgwork pair:", err)
				return 1
			}
			if _, err := in.Read(buf); err != nil {
				fmt.Fprintln(os.Stderr, "cgwork pair:", err)
				return 1
			}
		}
		fmt.Println(time.Since(t0).Nanoseconds())
	}
	return 0
}

func pipe() ([2]*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return [2]*os.File{}, fmt.Errorf("ping-pong pair: %w", err)
	}
	return [2]*os.File{r, w}, nil
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}
