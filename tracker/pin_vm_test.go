// SPDX-License-Identifier: Apache-2.0

package tracker

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// pinAll moves every thread of this process to CPU 0 and returns a
// function that restores their affinity to all CPUs.
//
// Why: enabling a tracepoint (attaching tp_btf, or loading the module,
// which hooks sched_switch) live-patches kernel text with int3 +
// text_poke. Under qemu's multi-threaded TCG a vCPU that executes the int3
// while the other finishes the patch can take an "Oops: int3" (seen once in
// syscall_trace_enter on 6.12); real hardware and KVM are not affected.
// With our threads on one CPU the other vCPU idles and never runs the
// patched code during the patch.
func pinAll() func() {
	var one, all unix.CPUSet
	one.Set(0)
	all.Zero()
	for i := 0; i < 1024; i++ {
		all.Set(i)
	}
	set := func(s *unix.CPUSet) {
		ents, _ := os.ReadDir("/proc/self/task")
		for _, e := range ents {
			if tid, err := strconv.Atoi(e.Name()); err == nil {
				unix.SchedSetaffinity(tid, s)
			}
		}
	}
	set(&one)
	return func() { set(&all) }
}
