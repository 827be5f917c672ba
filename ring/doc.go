// Package ring is the overwrite ring of fixed-size records that a region's
// "trace" section holds (docs/region-format.md §10): user tracepoints of
// the userspace eBPF runtime (userside/bpfrt) write it, readers
// (userside/client's Trace, `kushm trace`) read it.
//
// # Concurrency
//
//  1. Any number of writers: a writer reserves record n with one atomic
//     add on the header's head, stores seq 2n+1, the record, then 2n+2.
//  2. Any number of readers, never slowing a writer: a reader keeps a
//     copy of record n only when seq read 2n+2 before and after the copy;
//     otherwise it was overwritten, is being written or was never written.
//  3. A record is overwritten count records later; readers that fall
//     behind lose records, writers never wait.
//
// # Errors and lifetimes
//
// Open fails with an error wrapping ErrNoRing when the region has no
// trace section of the ring kind or its geometry does not fit. A Ring is
// valid while its region is open.
package ring
