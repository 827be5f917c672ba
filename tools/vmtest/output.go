package vmtest

import (
	"bufio"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Markers /init prints on the serial console around each step.
const (
	markBegin      = "KUSHM-VMTEST: BEGIN "
	markEnd        = "KUSHM-VMTEST: END "
	markDmesgBegin = "KUSHM-VMTEST: DMESG-BEGIN"
	markDmesgEnd   = "KUSHM-VMTEST: DMESG-END"
	markDone       = "KUSHM-VMTEST: DONE "
	markKernel     = "KUSHM-VMTEST: KERNEL "
)

// PackageResult is the outcome of one test binary in the guest.
type PackageResult struct {
	Name   string
	Exit   int // exit status of the test binary; -1 if it never ended
	Output string
}

// Passed reports whether the package's binary exited 0.
func (p PackageResult) Passed() bool { return p.Exit == 0 }

// guestLog is what parseConsole recovers from the serial console.
type guestLog struct {
	Packages []PackageResult
	Dmesg    string
	Done     bool    // the end marker was reached
	Exit     int     // /init's overall status
	Uptime   float64 // the guest's uptime (s) when /init started; 0 if unknown
}

// parseConsole splits the serial console into package results and dmesg.
// Lines outside the markers (boot messages) are ignored.
func parseConsole(r io.Reader) guestLog {
	var g guestLog
	g.Exit = -1
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var cur *PackageResult
	var out, dm strings.Builder
	inDmesg := false
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		// A marker can follow kernel console output on the same line.
		if i := strings.Index(line, "KUSHM-VMTEST: "); i > 0 {
			line = line[i:]
		}
		switch {
		case strings.HasPrefix(line, markBegin):
			g.Packages = append(g.Packages, PackageResult{Name: strings.TrimSpace(line[len(markBegin):]), Exit: -1})
			cur = &g.Packages[len(g.Packages)-1]
			out.Reset()
		case strings.HasPrefix(line, markEnd) && cur != nil:
			f := strings.Fields(line[len(markEnd):])
			if len(f) == 2 && strings.HasPrefix(f[1], "rc=") {
				cur.Exit, _ = strconv.Atoi(f[1][3:])
			}
			cur.Output = out.String()
			cur = nil
		case line == markDmesgBegin:
			inDmesg = true
		case line == markDmesgEnd:
			inDmesg = false
		case strings.HasPrefix(line, markKernel):
			f := strings.Fields(line[len(markKernel):])
			for i := 0; i+1 < len(f); i++ {
				if f[i] == "uptime" {
					g.Uptime, _ = strconv.ParseFloat(f[i+1], 64)
				}
			}
		case strings.HasPrefix(line, markDone):
			g.Done = true
			f := strings.TrimPrefix(strings.TrimSpace(line[len(markDone):]), "rc=")
			g.Exit, _ = strconv.Atoi(f)
		case inDmesg:
			dm.WriteString(line)
			dm.WriteByte('\n')
		case cur != nil:
			out.WriteString(line)
			out.WriteByte('\n')
		}
	}
	if cur != nil {
		cur.Output = out.String()
	}
	g.Dmesg = dm.String()
	return g
}

// complaintRE matches kernel log lines that fail a run: warnings, bugs,
// oopses, stack traces, sanitizer reports, lockups and stalls, and what
// PREEMPT_RT and lockdep report about locking and atomic context ("BUG:
// sleeping function called from invalid context", "BUG: scheduling while
// atomic", "BUG: Invalid wait context", lockdep's WARNING:/INFO: reports
// and DEBUG_LOCKS_WARN_ON), named explicitly so that a report printed
// without its usual prefix still fails the run.
var complaintRE = regexp.MustCompile(`WARNING:|BUG:|kernel BUG|Oops|Call Trace|general protection fault|` +
	`UBSAN:|KASAN:|KFENCE:|kmemleak:|watchdog: BUG|soft lockup|hard LOCKUP|rcu_sched detected stall|` +
	`rcu: INFO:|INFO: task .* blocked|Kernel panic|unable to handle|list_add corruption|list_del corruption|` +
	`refcount_t:|bad page state|BUG kmalloc|` +
	`sleeping function called from invalid context|scheduling while atomic|Invalid wait context|` +
	`possible circular locking dependency|possible recursive locking|inconsistent lock state|` +
	`INFO: possible .*lock|INFO: trying to register non-static key|DEBUG_LOCKS_WARN_ON|suspicious RCU usage|` +
	`lockdep bfs error`)

// Complaints returns the dmesg lines that fail a run.
func Complaints(dmesg string) []string {
	var out []string
	for _, l := range strings.Split(dmesg, "\n") {
		if complaintRE.MatchString(l) {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

var stampRE = regexp.MustCompile(`^\[\s*([0-9]+\.[0-9]+)\]`)

// SplitBoot separates the complaints the kernel logged before /init
// started (timestamp below uptime, the guest's uptime when /init printed
// its first marker) from the rest. With uptime 0 (unknown) every
// complaint counts; so does one without a timestamp.
func SplitBoot(complaints []string, uptime float64) (run, boot []string) {
	for _, c := range complaints {
		m := stampRE.FindStringSubmatch(c)
		if uptime > 0 && m != nil {
			if ts, err := strconv.ParseFloat(m[1], 64); err == nil && ts < uptime {
				boot = append(boot, c)
				continue
			}
		}
		run = append(run, c)
	}
	return run, boot
}
