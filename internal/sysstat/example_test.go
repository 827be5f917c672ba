package sysstat_test

import (
	"fmt"

	"github.com/kushm/kushm/internal/sysstat"
)

// Two CPUs record latencies into their own slots; a reader merges them
// and asks for the 0.99-quantile threshold (interpolated, × 1.0).
func Example() {
	var cpu0, cpu1 sysstat.Slot
	for i := uint64(0); i < 1000; i++ {
		cpu0.Record(1000+i, false, sysstat.DefaultDecayShift) // 1.0–2.0 µs
		cpu1.Record(3000, false, sysstat.DefaultDecayShift)   // 3 µs
	}
	h := sysstat.MergeSlots([]sysstat.Slot{cpu0, cpu1})
	p := sysstat.PolicyOf(sysstat.Global{Mode: sysstat.ModeInterp, Qppm: 990_000}, 0)
	fmt.Println("samples:", h.Count(), "median ≤", h.Quantile(500_000, false), "ns")
	fmt.Println("threshold:", sysstat.PolicyThreshold(&h, p), "ns")
	// Output:
	// samples: 2000 median ≤ 2079 ns
	// threshold: 3201 ns
}
