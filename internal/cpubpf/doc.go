// SPDX-License-Identifier: Apache-2.0

// Package cpubpf loads the per-CPU sampler (bpf/cpusample.bpf.c): a BPF
// timer pinned to each CPU (BPF_F_TIMER_CPU_PIN, Linux 6.7+) that fires
// once per sampling interval and reads that CPU's perf events locally
// into the CPU's element of an mmapable array, which Read copies with
// plain loads. The daemon thus reads every CPU's counters without a
// read(2) per CPU and without the cross-CPU interrupt that reading
// another CPU's event costs (docs/provider.md, "Who reads the per-CPU
// counters").
//
// # Arming
//
// A timer must be armed on the CPU it is to run on. Open attaches a
// tp_btf/sched_switch program (arm) that arms the timer of the CPU it
// runs on at that CPU's first switch, moves a thread to each CPU to make
// it switch, waits until every CPU has armed its timer (at most 2 s; a
// CPU that has not, e.g. one outside this process's cpuset that stayed
// idle, is left out and Read says ErrNotArmed for it), and detaches the
// program: afterwards nothing runs on the switch path.
// Each callback re-arms its timer for the next interval, read from the
// config array (SetInterval). Close frees the timers' map, which cancels
// the timers. A CPU taken offline has its timer moved to another CPU by
// the kernel; there the callback finds it runs on a CPU not its own and
// stops the timer (counted in Moved) rather than sample that CPU a
// second time. The CPU that comes back has no timer: its samples stop
// advancing, which the provider notices (a stale sample: it reads that
// CPU itself meanwhile), and Rearm restarts it on that CPU, attaching
// the arming program again for as long as that takes. (A Rearm that
// ran while the moved timer's callback was still running would see the
// timer start on the other CPU, stop there again, and need a second
// Rearm: the kernel keeps a timer whose callback runs where it is.)
//
// # Read's guarantees
//
//  1. A sample Read returns was written whole by one callback on the
//     CPU it names: Read copies between two equal even loads of the
//     element's sequence count, and the callback stores the count with
//     full-barrier exchanges before and after its stores (one writer
//     per element: a CPU's own timer).
//  2. Read never blocks and never loops unbounded: at most 8 copies,
//     then ErrNoSample (also before a CPU's first sample).
//  3. A CPU's samples are in time order: TimeNs and Samples only grow.
//
// # Errors
//
// Open wraps ErrNotSupported when this kernel cannot run the sampler
// (Linux before 6.7 refuses BPF_F_TIMER_CPU_PIN with EINVAL; PREEMPT_RT
// kernels refuse bpf_timer at load with EOPNOTSUPP); other
// errors (no BPF permission, a verifier refusal) are returned as they
// are, wrapped as "load the per-CPU sampler: ...".
//
// # Lifetimes
//
// The perf event descriptors in Config belong to the caller and must
// stay open while the Sampler is (the program reads them); the perf
// event arrays hold their own references. A Sampler is safe for
// concurrent Read; Open, SetInterval and Close are for one goroutine.
package cpubpf
