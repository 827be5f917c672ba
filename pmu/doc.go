// Package pmu knows what the CPU's performance monitoring unit can measure
// on a machine, what each reading means, and how to read it from
// userspace.
//
// # Presets
//
// A preset (PresetID) is a PAPI-style quantity: PAPI_TOT_CYC,
// PAPI_TOT_INS, ..., plus the kernel software events task-clock,
// page-faults, context-switches and cpu-migrations. Preset IDs are ABI:
// they are the column index of the region's per-CPU "pmu" section and the
// preset argument of bpf_kushm_read_counter. The same table is generated
// into kmod/include/generated/kushm_pmu.h (go generate), so Go, the kernel
// module and BPF programs agree.
//
// Each preset maps, per Vendor, onto one perf event (Mapping): a generic
// hardware or cache event where it means the same thing on that vendor, a
// raw event where it does not, or an event on an uncore PMU. Mapping.Counts
// says what the event really counts there. The traps: the generic
// cache-misses counts LLC misses on Intel but L2 misses on AMD Zen, and AMD
// has no core L3 event at all (L3 is the amd_l3 uncore PMU, which counts
// per L3 complex and can be opened per CPU only).
//
// # Probing
//
// Probe is papi_avail: for every preset it says whether it can be counted
// here and, if not, why. ProbeOptions.Static decides from /proc and /sys
// alone, which is how fixture trees (ProbeOptions.Root) are tested.
//
// # Counting
//
// OpenCPU, OpenProcess and OpenCgroup return a Reader that counts a set of
// presets on one target; OpenProcessAll sums a Reader per thread of a
// process (like perf stat -p) and OpenCgroupAll one per online CPU. The Reader keeps its perf file descriptors open;
// Read costs one read(2) per event, or one per group with Options.Group,
// and does not allocate, so it can be called every few milliseconds on
// every CPU. Values carry time_enabled and time_running: Scaled and Delta
// correct for multiplexing and Ratio reports how much of the time an event
// was really on a counter. Deltas derives IPC, miss ratios and MPKI.
//
// Counting goes through internal/sys/perfsys (golang.org/x/sys/unix) rather
// than github.com/hodgesds/perf-utils' profilers, which lose the errno,
// report HasProfilers() true even when nothing could be opened, have no
// group reads and do not scale multiplexed values. perf-utils is used by
// package msr for /dev/cpu/N/msr.
//
// OpenIMC reads DRAM traffic from the Intel server uncore IMC PMUs
// (cas_count_read/cas_count_write × 64 bytes); DiscoverIMC says when the
// machine has none.
//
// # Errors
//
// A preset that cannot be counted yields an *UnavailableError whose text
// reads "PRESET: not available on this machine, because REASON". It
// matches ErrNotAvailable and exactly one of ErrPermission
// (perf_event_paranoid / CAP_PERFMON, EACCES/EPERM), ErrNoPMU (no hardware
// PMU in this VM, no such uncore PMU: ENOENT/ENODEV) and ErrNotSupported
// (the PMU cannot count this event or not for this kind of target:
// EOPNOTSUPP/EINVAL), and unwraps to the errno. Opening a Reader fails
// only when the target is bad (no such process: ESRCH) or when no preset at
// all could be opened; otherwise unavailable presets are reported per
// preset by Reader.Err and read as Value.OK == false.
//
// On hybrid Intel CPUs (cpu_core and cpu_atom PMUs) events are opened
// without the extended PMU type in config bits 32 and up, so the kernel
// picks its default core PMU; per-core-type events are not supported yet.
//
// # Lifetimes
//
// A Reader holds file descriptors until Close. It is not safe for
// concurrent use: the provider should own one Reader per CPU (or per
// cgroup and CPU) and call it from one goroutine, ideally pinned to that
// CPU (PinToCPU), which saves a cross-CPU call per read(2). A process Reader for pid
// counts that thread only, and, with Options.Inherit, the children it
// creates after the Reader was opened; count whole existing processes with
// cgroup readers. System is read once (LoadSystem) and may be shared by
// many readers through Options.System.
package pmu
