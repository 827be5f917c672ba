// SPDX-License-Identifier: Apache-2.0

package cpubpf_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/kushm/kushm/internal/cpubpf"
)

// A sampler over one event per CPU (fds: perf event descriptors the
// caller opened per CPU, e.g. a software counter), read once per
// interval without a system call. Where the kernel cannot run it the
// caller reads the events itself.
func Example() {
	fds := map[int]int{ /* cpu: perf event fd */ }
	s, err := cpubpf.Open(cpubpf.Config{NCPUs: 2, CPUs: []int{0, 1}, Events: []map[int]int{fds}, Interval: 10 * time.Millisecond})
	if errors.Is(err, cpubpf.ErrNotSupported) {
		fmt.Println("read the events with read(2):", err)
		return
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	time.Sleep(20 * time.Millisecond)
	var smp cpubpf.Sample
	for cpu := 0; cpu < 2; cpu++ {
		if err := s.Read(cpu, &smp); err != nil {
			fmt.Println(cpu, err) // ErrNoSample, ErrNotArmed: read this CPU yourself
			continue
		}
		if smp.Valid&1 != 0 {
			fmt.Println(cpu, smp.TimeNs, smp.Val[0], smp.Enabled[0], smp.Running[0])
		}
	}
}
