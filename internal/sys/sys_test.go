package sys

import "testing"

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
