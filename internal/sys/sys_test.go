package sys

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestMonotonicIsClockMonotonic(t *testing.T) {
	for i := 0; i < 100; i++ {
		a := clockMonotonic()
		b := MonotonicNs()
		c := clockMonotonic()
		if b < a || b > c {
			t.Fatalf("runtime clock %d outside clock_gettime [%d, %d]", b, a, c)
		}
	}
}

func TestStatOf(t *testing.T) {
	dir := t.TempDir()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := StatOf(fi)
	if !ok || st.Mode&TypeMask != TypeDir || st.Ino == 0 || int(st.UID) != os.Geteuid() {
		t.Fatalf("StatOf(%s) = %+v, %v", dir, st, ok)
	}
	fd, err := OpenFile(dir, ORdonly, false)
	if err != nil {
		t.Fatal(err)
	}
	defer Close(fd)
	if fst, err := Fstat(fd); err != nil || fst.Ino != st.Ino || fst.Dev != st.Dev {
		t.Fatalf("Fstat %+v, StatOf %+v (%v)", fst, st, err)
	}
	if _, ok := StatOf(nil); ok {
		t.Fatal("StatOf(nil) ok")
	}
}

// A /proc file kept open and read again at offset 0 is formatted afresh:
// the provider keeps /proc/stat open and relies on it.
func TestPreadPseudoRefreshes(t *testing.T) {
	fd, err := OpenFile("/proc/stat", ORdonly, false)
	if err != nil {
		t.Skipf("no /proc/stat: %v", err)
	}
	defer Close(fd)
	ctxt := func() uint64 {
		buf := make([]byte, 1<<20)
		n := 0
		for {
			m, err := PreadPseudo(fd, buf[n:], int64(n))
			if err != nil {
				t.Fatal(err)
			}
			if m == 0 {
				break
			}
			n += m
		}
		for _, l := range strings.Split(string(buf[:n]), "\n") {
			if v, ok := strings.CutPrefix(l, "ctxt "); ok {
				c, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
		}
		t.Fatalf("no ctxt line in %d bytes of /proc/stat", n)
		return 0
	}
	a := ctxt()
	for i := 0; i < 20; i++ {
		time.Sleep(time.Millisecond) // context switches, at least ours
	}
	if b := ctxt(); b <= a {
		t.Fatalf("ctxt %d then %d: the second read was not fresh", a, b)
	}
}

func TestAlarm(t *testing.T) {
	a, err := NewAlarm()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// A deadline 30 ms ahead: Wait returns at it, not before.
	start := MonotonicNs()
	if err := a.Set(start + 30e6); err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := MonotonicNs() - start; got < 30e6 {
		t.Errorf("Wait returned after %d ns, before the 30 ms deadline", got)
	}
	// A deadline already past fires at once (well under the 30 ms above).
	if err := a.Set(1); err != nil {
		t.Fatal(err)
	}
	start = MonotonicNs()
	if err := a.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := MonotonicNs() - start; got > 1e9 {
		t.Errorf("a past deadline took %d ns to fire", got)
	}
	// A later Set replaces an earlier one; Close from another goroutine
	// ends a Wait in progress with ErrClosed.
	if err := a.Set(MonotonicNs() + 3600e9); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("Wait returned %v before its deadline or Close", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Wait after Close = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end Wait")
	}
	if err := a.Set(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Set after Close = %v, want ErrClosed", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

func TestAlarmPeriodic(t *testing.T) {
	a, err := NewAlarm()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	const period = 20e6
	start := MonotonicNs()
	first := start + period
	if err := a.SetPeriodic(first, period); err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 3; i++ {
		if at, per := a.Pending(); at != first+i*period || per != period {
			t.Fatalf("wake %d: Pending = %d, %d; want %d, %d", i, at, per, first+i*period, uint64(period))
		}
		if err := a.Wait(); err != nil {
			t.Fatal(err)
		}
		if now := MonotonicNs(); now < first+i*period {
			t.Fatalf("wake %d at %d, before its expiry %d", i, now, first+i*period)
		}
	}
	// Late by three periods: one Wait consumes them all and Pending
	// moves past them.
	time.Sleep(3 * period)
	if err := a.Wait(); err != nil {
		t.Fatal(err)
	}
	if at, _ := a.Pending(); at <= MonotonicNs()-period {
		t.Errorf("after a late Wait, Pending %d is in the past (now %d)", at, MonotonicNs())
	}
	// Set (one-shot) clears the periodic setting.
	if err := a.Set(1); err != nil {
		t.Fatal(err)
	}
	if at, per := a.Pending(); at != 0 || per != 0 {
		t.Errorf("one-shot Pending = %d, %d", at, per)
	}
}

// Setting and waiting allocate nothing: a 100 Hz sampler makes no
// garbage by sleeping.
func TestAlarmAllocs(t *testing.T) {
	a, err := NewAlarm()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if n := testing.AllocsPerRun(100, func() {
		if err := a.Set(1); err != nil {
			t.Fatal(err)
		}
		if err := a.Wait(); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Set+Wait allocate %v times", n)
	}
}

func TestReadPseudoFile(t *testing.T) {
	b := make([]byte, 4096)
	n, err := ReadPseudoFile("/proc/self/stat", b)
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(os.Getpid()) + " ("; !strings.HasPrefix(string(b[:n]), want) {
		t.Fatalf("/proc/self/stat read %q", b[:n])
	}
	if _, err := ReadPseudoFile("/proc/no-such-file", b); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	// A FIFO with no writer: the open does not wait (O_NONBLOCK).
	fifo := t.TempDir() + "/fifo"
	if err := mkfifo(fifo); err != nil {
		t.Skip(err)
	}
	done := make(chan error, 1)
	go func() { _, err := ReadPseudoFile(fifo, b); done <- err }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("ReadPseudoFile blocked on a FIFO")
	}
	// A last symbolic link is not followed.
	link := t.TempDir() + "/link"
	if err := os.Symlink("/proc/self/stat", link); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPseudoFile(link, b); err == nil {
		t.Fatal("ReadPseudoFile followed a symbolic link")
	}
	st, err := StatPseudo("/proc/self")
	if err != nil {
		t.Fatal(err)
	}
	if int(st.UID) != os.Geteuid() {
		t.Fatalf("StatPseudo(/proc/self) uid %d, euid %d", st.UID, os.Geteuid())
	}
	if _, err := StatPseudo("/proc/no-such-file"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func mkfifo(path string) error { return unix.Mkfifo(path, 0o600) }
