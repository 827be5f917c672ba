package provider

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
)

const procStatFixture = `cpu  10132153 290696 3084719 46828483 16683 0 25195 175628 0 0
cpu0 1393280 32966 572056 13343292 6130 0 17875 123 0 0
cpu1 1335 12 100 5000 7 3 4 99 0 0
intr 1462898 0 0 0
ctxt 2255 
btime 1062491902
processes 8861
cpu3 1 2 3 4
`

func TestParseCPUTimes(t *testing.T) {
	m, err := parseCPUTimes([]byte(procStatFixture))
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 3 {
		t.Fatalf("cpus: %v", m)
	}
	c1 := m[1]
	v, valid := c1.ns()
	want := [NumCPUTime]uint64{
		CPUTimeBusy: (1335 + 12 + 100 + 3 + 4) * 1e7, CPUTimeUser: (1335 + 12) * 1e7, CPUTimeSystem: (100 + 3 + 4) * 1e7,
		CPUTimeIdle: 5000 * 1e7, CPUTimeIOWait: 7 * 1e7, CPUTimeSteal: 99 * 1e7,
	}
	if v != want || valid != 1<<NumCPUTime-1 {
		t.Fatalf("cpu1: %v %b, want %v", v, valid, want)
	}
	// An old kernel's line without iowait, irq or steal: those are not
	// valid (n/a), not 0.
	_, valid = m[3].ns()
	if valid != 1<<CPUTimeUser|1<<CPUTimeIdle {
		t.Fatalf("cpu3 valid %b", valid)
	}
	for _, bad := range []string{"cpu0 1 2 x 4\n", "cpu0 1 2\n", "cpux 1 2 3 4\n", "cpu0 1 2 3 4\ncpu0 1 2 3 4\n", "cpu99999999999 1 2 3 4\n"} {
		if _, err := parseCPUTimes([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// This machine's own /proc/stat parses, one line per CPU.
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		m, err := parseCPUTimes(b)
		if err != nil || len(m) == 0 {
			t.Fatalf("/proc/stat: %v %v", m, err)
		}
	}
}

// format writes m as /proc/stat cpu lines.
func formatCPUTimes(m map[int]cpuTimes) []byte {
	var cpus []int
	for c := range m {
		cpus = append(cpus, c)
	}
	sort.Ints(cpus)
	var b bytes.Buffer
	for _, c := range cpus {
		t := m[c]
		fmt.Fprintf(&b, "cpu%d", c)
		for _, v := range []uint64{t.User, t.Nice, t.System, t.Idle, t.IOWait, t.IRQ, t.SoftIRQ, t.Steal}[:t.Fields] {
			fmt.Fprintf(&b, " %d", v)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// FuzzParseCPUTimes: any input parses or fails with an error, never a
// panic; what parses formats back to the same values; busy never
// exceeds what the fields add up to.
func FuzzParseCPUTimes(f *testing.F) {
	f.Add([]byte(procStatFixture))
	f.Add([]byte("cpu0 1 2 3 4 5 6 7 8 9 10 11 12\n"))
	f.Add([]byte("cpu 1 2 3 4\ncpu1 18446744073709551615 0 0 0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseCPUTimes(b)
		if err != nil {
			return
		}
		m2, err := parseCPUTimes(formatCPUTimes(m))
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if len(m2) != len(m) {
			t.Fatalf("round trip: %v vs %v", m, m2)
		}
		for c, x := range m {
			if m2[c] != x {
				t.Fatalf("cpu%d: %+v vs %+v", c, x, m2[c])
			}
			v, valid := x.ns()
			if valid&^(1<<NumCPUTime-1) != 0 {
				t.Fatalf("valid %b", valid)
			}
			_ = v
		}
	})
}

// TestCPUTimeSection: the daemon publishes per-CPU busy/idle/iowait/steal
// time from /proc/stat; over an interval the four add up to the elapsed
// time per CPU (at USER_HZ resolution), unlike task-clock.
func TestCPUTimeSection(t *testing.T) {
	p, err := New(Config{Path: filepath.Join(t.TempDir(), "kushm"), Interval: 10 * time.Millisecond, Watch: Watch{None: true}, NoMSR: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	a, err := atomicarr.Open(p.Region(), abi.SecNameCPUTime)
	if err != nil {
		t.Fatal(err)
	}
	snap := func() []atomicarr.Snapshot {
		if err := p.Sample(); err != nil {
			t.Fatal(err)
		}
		out := make([]atomicarr.Snapshot, a.Rows())
		for i := range out {
			if err := a.Snapshot(i, &out[i]); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	s0 := snap()
	start := time.Now()
	time.Sleep(500 * time.Millisecond)
	s1 := snap()
	elapsed := time.Since(start)
	for _, cpu := range p.CPUs() {
		a, b := s0[cpu], s1[cpu]
		for _, slot := range []int{abi.CPUTimeBusy, abi.CPUTimeIdle, abi.CPUTimeIOWait, abi.CPUTimeSteal} {
			if !b.Has(slot) {
				t.Fatalf("cpu %d: slot %d not valid", cpu, slot)
			}
		}
		var sum uint64
		for _, slot := range []int{abi.CPUTimeBusy, abi.CPUTimeIdle, abi.CPUTimeIOWait, abi.CPUTimeSteal} {
			sum += b.Vals[slot] - a.Vals[slot]
		}
		// Ticks are 10 ms; the kernel accounts idle time lazily (NO_HZ),
		// so allow a few ticks either way.
		d := time.Duration(sum)
		if d < elapsed/2 || d > elapsed*3/2+50*time.Millisecond {
			t.Errorf("cpu %d: busy+idle+iowait+steal advanced %v over %v", cpu, d, elapsed)
		}
		if b.Vals[abi.CPUTimeBusy] != b.Vals[abi.CPUTimeUser]+b.Vals[abi.CPUTimeSystem] {
			t.Errorf("cpu %d: busy %d != user %d + system %d", cpu, b.Vals[abi.CPUTimeBusy], b.Vals[abi.CPUTimeUser], b.Vals[abi.CPUTimeSystem])
		}
	}
}
