// Package client is kushm's one reader API: every reader of a region, the
// kushm commands and the web view included, goes through it. It reads the
// per-CPU PMU presets and MSRs, the per-process stats, the syscall latency
// statistics and thresholds, an application's trace ring, the control
// section's values, any section through its own schema (Decode, Dump: the
// generic decoder of package dump), and what is unavailable on this
// machine and why, whichever producer (the kernel module or the userspace
// daemon) fills the region. Producers never import it. It returns data;
// the kushm command renders it.
//
// Open discovers the region (Candidates: /dev/kushm, then
// /sys/kernel/debug/kushm/region, then /dev/shm/kushm, under a root for
// tests; a discovered file must belong to root, this user or one of
// Options.ProducerUIDs), maps it read-only (the control section writable
// with Options.WritableControl) and checks its producer is alive. Reads
// are loads from shared memory: Counter is two atomic loads, SamplePMU
// one seq-validated snapshot per CPU row, Process an rcuhash lookup. No
// read makes a system call.
//
// A counter the producer cannot read has its valid bit clear: Counter
// returns ok == false, Query and Stats give null totals and rates with the
// producer's reason (Why), and readers print "n/a". The reasons are data
// (Unavailable: what, source, kind, cause, errno), read from the info
// section's entries; Unavailable.Error composes the sentence.
//
// # Errors
//
// Open is the one way a region is opened, so every reader explains a
// failure alike. Its errors wrap shm's sentinels and say what to do:
// shm.ErrNoRegion (no producer: start "kushm serve"), shm.ErrStaleProducer
// (it stopped or died: restart it, or use Options.AllowStale to read its
// last data), fs.ErrPermission (join the region's group), shm.ErrBadMagic,
// shm.ErrExists or shm.ErrTruncated (the path holds another file: a FIFO,
// a directory, a symbolic link), shm.ErrUntrusted (a discovered region of
// a user not trusted to produce it: Options.ProducerUIDs),
// shm.ErrABIMismatch. Reads of a row whose writer died mid-update report
// shm.ErrRetry. Every method that reads the region guards itself: a
// region file shrunk under the mapping is an error wrapping
// shm.ErrChanged, not a SIGBUS (Counter and MSR excepted: run a loop of
// them in Client.Guard). Syscalls reports ErrNoSyscallTable for a region
// without one, Trace ring.ErrNoRing; the Set and Request methods report
// shm.ErrReadOnly without Options.WritableControl and errs.ErrInvalid
// (kushm's family: tracker.ErrInvalid is the same value) for a value out
// of range.
//
// # Lifetimes
//
// A Client is safe for concurrent use. After Close, every view it
// returned (a trace ring) reads zeros instead of faulting, and the
// mapping is released once nothing refers to it (shm.Region). A restarted
// daemon creates a new region file: an open Client keeps reading the old
// (stale) one (CheckProducer says so; `kushm top` then re-opens).
package client
