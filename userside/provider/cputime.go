package provider

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/sys"
)

// CPU time accounting from /proc/stat: the per-CPU busy, idle, iowait and
// steal time the "cputime" section publishes. The task-clock software
// event counts wall time on an idle CPU too (the idle task runs), so it
// cannot say how busy a CPU is; the kernel's cpustat can.

// The section's slots (abi.CPUTime*).
const (
	CPUTimeBusy   = abi.CPUTimeBusy
	CPUTimeUser   = abi.CPUTimeUser
	CPUTimeSystem = abi.CPUTimeSystem
	CPUTimeIdle   = abi.CPUTimeIdle
	CPUTimeIOWait = abi.CPUTimeIOWait
	CPUTimeSteal  = abi.CPUTimeSteal
	NumCPUTime    = abi.NumCPUTime
)

// cpuTimeNames are the column names of the cputime section (declared in
// abi.Sections), for the reasons of an unreadable /proc/stat.
var cpuTimeNames = [NumCPUTime]string{"busy", "user", "system", "idle", "iowait", "steal"}

// cpuTimeEvery bounds how often /proc/stat is read: formatting it walks
// every interrupt of the machine, which at 100 Hz was a fifth of the
// daemon's CPU time (pprof/perf profile in docs/benchmarks.md), while
// busy time at 10 Hz is fresh enough for every reader.
const cpuTimeEvery = 100 * time.Millisecond

// sampleCPUTime reads /proc/stat and writes one cputime row per CPU,
// at most every cpuTimeEvery. A CPU missing from it (offline) gets no
// valid slot.
func (p *Provider) sampleCPUTime(now uint64) {
	if p.cpuTimeArr == nil {
		return
	}
	if p.lastCPUTime != 0 && now-p.lastCPUTime < uint64(cpuTimeEvery-cpuTimeEvery/20) {
		return
	}
	p.lastCPUTime = now
	n, err := p.readProcStat(p.cpuStatBuf)
	if err != nil {
		return
	}
	if n == len(p.cpuStatBuf) && len(p.cpuStatBuf) < 1<<22 {
		p.cpuStatBuf = make([]byte, 2*len(p.cpuStatBuf)) // larger next time
		return
	}
	m, err := parseCPUTimes(p.cpuStatBuf[:n])
	if err != nil {
		return
	}
	for _, cpu := range p.cpus {
		if cpu >= p.rows {
			continue
		}
		t, ok := m[cpu]
		if !ok {
			_ = p.cpuTimeArr.Update(cpu, now, 0, p.tslots[:])
			continue
		}
		vals, valid := t.ns()
		p.tslots = vals
		_ = p.cpuTimeArr.Update(cpu, now, valid, p.tslots[:])
	}
}

// readProcStat reads /proc/stat from its start into buf through a
// descriptor kept open (no open and close per read) with reads that skip
// the scheduler's system-call hand-off (sys.PreadPseudo): at 10 Hz these
// were a good part of the daemon's cost at --interval 10ms. A read at
// offset 0 makes the kernel format the file afresh.
func (p *Provider) readProcStat(buf []byte) (int, error) {
	if !p.procStatOpen {
		fd, err := sys.OpenFile(p.procStat, sys.ORdonly, false)
		if err != nil {
			return 0, err
		}
		p.procStatFD, p.procStatOpen = fd, true
	}
	n := 0
	for n < len(buf) {
		m, err := sys.PreadPseudo(p.procStatFD, buf[n:], int64(n))
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}

// cpuTimes is one "cpuN" line of /proc/stat, in USER_HZ ticks. Fields
// counts the numbers the line had (old kernels have no iowait or steal).
type cpuTimes struct {
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ, Steal uint64
	Fields                                                int
}

var errCPUStatSyntax = errors.New("malformed /proc/stat cpu line")

// parseCPUTimes returns the per-CPU lines of /proc/stat by CPU number
// (the aggregate "cpu" line is skipped). A malformed cpu line fails the
// parse; other lines are ignored.
func parseCPUTimes(b []byte) (map[int]cpuTimes, error) {
	out := map[int]cpuTimes{}
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if !bytes.HasPrefix(line, []byte("cpu")) {
			continue
		}
		f := bytes.Fields(line)
		if len(f) == 0 || bytes.Equal(f[0], []byte("cpu")) {
			continue
		}
		n, err := strconv.ParseUint(string(f[0][len("cpu"):]), 10, 31)
		if err != nil || n >= 1<<16 {
			return nil, fmt.Errorf("%w: %q", errCPUStatSyntax, truncate(line))
		}
		if len(f) < 5 {
			return nil, fmt.Errorf("%w: %d fields: %q", errCPUStatSyntax, len(f)-1, truncate(line))
		}
		var t cpuTimes
		dst := []*uint64{&t.User, &t.Nice, &t.System, &t.Idle, &t.IOWait, &t.IRQ, &t.SoftIRQ, &t.Steal}
		for i, v := range f[1:] {
			x, err := strconv.ParseUint(string(v), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%w: field %d: %q", errCPUStatSyntax, i+1, truncate(line))
			}
			if i < len(dst) {
				*dst[i] = x
				t.Fields = i + 1
			}
		}
		if _, dup := out[int(n)]; dup {
			return nil, fmt.Errorf("%w: cpu%d twice", errCPUStatSyntax, n)
		}
		out[int(n)] = t
	}
	return out, nil
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// ns returns the section's slots in ns and the valid mask: a field the
// line did not have is not valid, never 0.
func (t cpuTimes) ns() (vals [NumCPUTime]uint64, valid uint64) {
	const tick = 1e9 / userHZ
	set := func(slot int, ticks uint64, need int) {
		if t.Fields >= need {
			vals[slot] = ticks * tick
			valid |= 1 << slot
		}
	}
	set(CPUTimeUser, t.User+t.Nice, 2)
	set(CPUTimeIdle, t.Idle, 4)
	set(CPUTimeIOWait, t.IOWait, 5)
	set(CPUTimeSystem, t.System+t.IRQ+t.SoftIRQ, 7)
	set(CPUTimeBusy, t.User+t.Nice+t.System+t.IRQ+t.SoftIRQ, 7)
	set(CPUTimeSteal, t.Steal, 8)
	return vals, valid
}
