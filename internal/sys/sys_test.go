package sys

import (
	"os"
	"testing"
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
