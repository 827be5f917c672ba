// Package client is the Go API for reading a kushm region: the per-CPU
// PMU presets and MSRs, the per-process stats, and what is unavailable on
// this machine and why, whichever producer (the kernel module or the
// userspace daemon) fills it.
//
// Open discovers the region (Candidates: /dev/kushm, then
// /sys/kernel/debug/kushm/region, then /dev/shm/kushm, under a root for
// tests), maps it read-only and checks its producer is alive. Reads are
// loads from shared memory: Counter is two atomic loads, SamplePMU one
// seq-validated snapshot per CPU row, Process an rcuhash lookup. No read
// makes a system call.
//
// A counter the producer cannot read has its valid bit clear: Counter
// returns ok == false, Query and Stats give null totals and rates with the
// producer's reason (Why), and the tables print "n/a".
//
// # Errors
//
// Open's errors wrap shm's sentinels and say what to do: shm.ErrNoRegion
// (no producer: start "kushm serve"), shm.ErrStaleProducer (it stopped or
// died: restart it, or use Options.AllowStale to read its last data),
// fs.ErrPermission (join the region's group), shm.ErrBadMagic or
// shm.ErrExists (the path holds another file), shm.ErrABIMismatch.
// Reads of a row whose writer died mid-update report shm.ErrRetry.
//
// # Lifetimes
//
// A Client is safe for concurrent use. After Close, every view it
// returned (a trace ring) reads zeros instead of faulting, and the
// mapping is released once nothing refers to it (shm.Region). A restarted daemon creates a
// new region file: an open Client keeps reading the old (stale) one
// (CheckProducer says so; `kushm top` then re-opens).
package client
