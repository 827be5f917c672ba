// SPDX-License-Identifier: Apache-2.0

package tracker_test

import (
	"fmt"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/tracker"
)

// Two CPUs' slots of one syscall, merged as the kernel merges them, and
// the adaptive threshold mean + 3σ.
func ExampleThreshold() {
	cpu0 := abi.SyscallStat{Count: 50, SumNs: 50 * 900, M2: 50 * 100 * 100, MinNs: 700, MaxNs: 1100}
	cpu1 := abi.SyscallStat{Count: 50, SumNs: 50 * 1100, M2: 50 * 100 * 100, MinNs: 900, MaxNs: 1300}
	m := tracker.Merge([]abi.SyscallStat{cpu0, cpu1})
	fmt.Println("count", m.Count, "mean", m.MeanNs, "sigma", tracker.StdDev(m))
	fmt.Println("threshold", tracker.Threshold(m, 300, 64))
	// Output:
	// count 100 mean 1000 sigma 141
	// threshold 1423
}
