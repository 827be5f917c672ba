// Package shm creates, maps and validates kushm shared regions: the one
// binary format (docs/region-format.md, ABI in internal/abi) through which
// the kernel module, the userspace provider and every reader agree.
//
// Producers call Create (a file, e.g. under /dev/shm, with a companion
// .ctl file for the user-writable section) or CreateMemfd (an anonymous,
// size-sealed memory file handed to readers by descriptor), or Adopt
// after a restart; they fill sections through
// the typed views of packages atomicarr and rcuhash, refresh the heartbeat
// with Heartbeat and call Stop when done. Readers call Open on a path (the
// daemon's file under /dev/shm, the debugfs file or /dev/kushm); the
// region is mapped read-only except the user-writable control section,
// which Options.WritableControl maps read-write.
//
// # Trust
//
// A reader never trusts the region's bytes: ParseHeader and ParseSections
// check every size and offset against the mapping (in 64-bit arithmetic,
// refusing overflow), every name and every count, and the typed views
// check their own geometry again. Whatever the bytes, a reader returns an
// error; it does not panic, loop without bound or touch memory outside
// the mapping. The parsers are fuzzed (FuzzParse).
//
// Nor does it trust the region's files, which other local users may
// create first, truncate or replace (docs/architecture.md, "Trust
// model"). Open opens without blocking and without following a last
// symbolic link, and checks the open descriptor before reading: a regular
// file or a character device (a FIFO, directory or socket is ErrExists),
// big enough for the header it holds (ErrTruncated). With
// Options.CheckOwner (discovered paths) the owner must be root, the
// reader's user or a configured producer uid (ErrUntrusted). The .ctl
// file must be a regular file of the region file's owner, non-empty and
// big enough for its section; otherwise the control section is Missing
// (MissingReason says why) and the rest of the region stays readable. A
// region has at most one control section and one control mapping.
// Liveness calls a producer stale when its heartbeat lies in the future
// (beyond FutureSlack) or its pid no longer exists.
//
// # Contracts for long-lived readers
//
//  1. A file shrunk under a mapping faults (SIGBUS) on the next load from
//     a page past its new end. Guard(f) turns such a fault in any
//     region's mapping into an error wrapping ErrChanged that names the
//     file; it guards the calling goroutine only.
//  2. Guard a pass of a loop, not each load: it costs two runtime calls
//     and a deferred recover.
//  3. Region.Check (fstat, lstat; no memory access) reports a file that
//     shrank or was replaced (ErrChanged). Call it between passes; after
//     ErrChanged, Close the region and reopen it or stop.
//  4. A panic that is not a fault in a registered mapping goes on.
//
// # Errors
//
// Errors wrap the sentinels in errors.go with what was being done
// ("open region /dev/shm/kushm: section \"pmu\": ...: region corrupt");
// test them with errors.Is: ErrNoRegion (nothing at the path), ErrBadMagic,
// ErrABIMismatch (unknown major), ErrTruncated, ErrCorrupt,
// ErrStaleProducer (stopped or no heartbeat within 3 periods),
// ErrReadOnly, ErrNoSection, ErrExists (path taken by another file),
// ErrRetry and ErrFull (used by the structure packages), ErrUntrusted
// (a discovered file of a user not trusted to produce it), ErrChanged (a
// file shrank or was replaced while mapped).
//
// # Lifetimes
//
// Region.Close releases the files at once and replaces the mappings by
// zero pages; the address ranges are unmapped once the Region and every
// view of it (atomicarr, rcuhash, ring tables, which keep their Region
// reachable) are unreachable, through runtime.AddCleanup as cilium/ebpf's
// Memory does. A view used after Close therefore never faults: it reads
// zeros (rows n/a, no entries: rcuhash's Read and Range return
// ErrClosed and nothing), and a writer's stores land in private memory.
// A slice from Bytes does not keep its Region reachable: hold the Region
// or a view while using it. The hot reads pay nothing for this
// (runtime.KeepAlive only; docs/benchmarks.md).
// A producer that dies leaves its region file in place and consistent;
// readers see ErrStaleProducer (or read it with Options.AllowStale).
package shm
