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
// # Errors
//
// Errors wrap the sentinels in errors.go with what was being done
// ("open region /dev/shm/kushm: section \"pmu\": ...: region corrupt");
// test them with errors.Is: ErrNoRegion (nothing at the path), ErrBadMagic,
// ErrABIMismatch (unknown major), ErrTruncated, ErrCorrupt,
// ErrStaleProducer (stopped or no heartbeat within 3 periods),
// ErrReadOnly, ErrNoSection, ErrExists (path taken by another file),
// ErrRetry and ErrFull (used by the structure packages).
//
// # Lifetimes
//
// A Region's memory, and every view and slice obtained from it, is valid
// until Region.Close, which unmaps it; using a view after Close faults.
// A producer that dies leaves its region file in place and consistent;
// readers see ErrStaleProducer (or read it with Options.AllowStale).
package shm
