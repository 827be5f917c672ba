// Package atomicarr implements per-CPU arrays of u64 counters inside a
// kushm region (docs/region-format.md §5): one cache-line-aligned row per
// CPU, each with a vDSO-style seqcount so a reader gets all counters of
// one sample together.
//
// # Who writes
//
// Each row has exactly one writer at a time (the producer's sampling
// thread, or in the kernel the CPU that owns the row). Readers in any
// process, and kernel eBPF through kfuncs, only read.
//
// # Guarantees
//
//  1. Never torn: a Snapshot that returns nil holds the values of exactly
//     one completed Update of its row (time, valid mask and slots alike).
//  2. Wait-free reads: Snapshot retries at most abi.MaxRetries (16) times
//     and then returns an error wrapping shm.ErrRetry; it never blocks or
//     waits for the writer. Load is a single atomic load.
//  3. A writer that dies mid-update leaves the row's seq odd: Snapshot of
//     that row reports shm.ErrRetry; other rows are unaffected.
//  4. A slot whose valid bit is clear is not a reading ("n/a"), not 0.
//
// # Ordering
//
// Writer: W1 seq=odd, W2 wmb, W3 slots, W4 wmb, W5 seq=even. Reader: R1
// seq (even), R2 rmb, R3 copy, R4 rmb, R5 seq unchanged. W4 pairs with R2
// and W2 with R4. In Go, sync/atomic operations are sequentially
// consistent and provide both barriers.
//
// # Lifetimes
//
// An Array is a view of its region and is valid until the region is
// closed.
package atomicarr
