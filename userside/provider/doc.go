// Package provider is the userspace producer of a kushm region (the
// daemon behind "kushm serve"): it makes kushm useful on any Linux machine
// without the kernel module.
//
// A Provider probes what this machine can count, creates the region
// (docs/region-format.md) and, every interval, writes per CPU the pmu
// presets (perf_event_open, one group read per CPU) and the MSR catalogue
// into atomicarr rows, and per watched process (pid → comm, counters) an
// entry of the "procs" rcuhash table. Every preset or MSR it cannot read
// has its valid bit clear in every row and an entry (what, source, kind,
// errno, cause: docs/region-format.md §9) in the "info" section: readers
// print "n/a" and the reason, never 0.
//
// # Sections
//
//	pmu       atomicarr, one row per possible CPU, slot = pmu preset id
//	msr       atomicarr, one row per possible CPU, slot = msr catalogue id
//	procs     rcuhash, key pid, data abi.ProcData, value abi.ProcStat (1 slot)
//	syscalls  rcuhash, key syscall nr, value a syscall slot (abi.SyscallSlotSize; left empty here)
//	control   user-writable, in the companion file <region>.ctl
//	info      text: what is unavailable and why
//
// Per process, page faults (minflt + majflt) and CPU time (utime + stime)
// come from /proc/<pid>/stat for every watched process; when the machine
// has a hardware PMU, core presets are also counted per process with
// perf_event_open (inherit, up to 256 processes). Context switches and
// migrations are per CPU only: their valid bits are clear per process.
//
// # Access
//
// The region file is created 0640 and the control file 0660 (both never
// world-writable; CreateOptions choose the modes and group): readers need
// read access to the region, and only those the operator allows write
// access to the .ctl file can change the control values. Every control
// value is read once per wake-up, range-checked against the abi bounds; an
// out-of-range one is ignored (the configured value stays in force) and
// counted once in the header's control_rejected field (ABI 1.2; the
// control section is user-writable, the header is not). See
// docs/provider.md.
//
// # Errors
//
// New wraps ErrBusy (a live producer serves the path), ErrConfig (a bad
// Config value), shm.ErrExists (the path holds another file) and the
// operating system's errors (fs.ErrPermission on the region's directory)
// with what was being done and what to do about it. Counters that cannot
// be read are not errors: they are listed by Unavailable.
//
// # Lifetimes
//
// New returns with one complete sample published (the CPUs, the watched
// processes, the cgroups), so a reader or a service started before Run
// (ServeOptions.Attach: the Prometheus endpoint) never sees a section
// that was not copied yet. Sample copies processes and cgroups when
// their intervals have passed; SampleAll copies every section at once.
//
// One goroutine at a time may call Run, Sample or SampleAll. Close stops sampling,
// marks the region stopped (readers see the final data and a stale
// producer) and unmaps it; the region file stays until shm.Remove. A
// provider killed without Close leaves a consistent region whose
// heartbeat stops: readers call it stale after 3 s, and the next New on
// the same path adopts it (same layout, info and file modes: readers keep
// their mapping) or replaces it.
package provider
