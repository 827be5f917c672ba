// Package rcuhash implements the fixed-capacity hash table of kushm
// regions (docs/region-format.md §6): wait-free, never-torn reads from any
// process (and the kernel), one structure writer, and per-slot writers.
//
// Layout: a header, an array of u32 bucket heads, and a node array. Nodes
// are type-stable: they are never freed, only recycled, so a reader that
// holds a stale node index still reads a node. Each node has a seq (even:
// live and stable; odd: free or changing), key, bucket, next, immutable
// data (replaced only whole, under the node seq: SetData) and NSlots value
// slots, each slot with its own seqcount.
//
// # Who writes what
//
//   - Structure writer (Insert, Delete, SetData): exactly one per table. In the
//     daemon it is the sampling goroutine that called OpenWriter; in the
//     kernel it is whoever holds the table's spinlock (readers never
//     take it).
//   - Slot writers (Update): slot j of a live node has one owner: the
//     structure writer when NSlots is 1; CPU j in the kernel, which finds
//     the node under rcu_read_lock and whose deleted nodes are recycled
//     only after a grace period.
//   - Readers (Lookup, Read, Range): any number, any process; they never
//     write and never wait.
//
// # Guarantees
//
//  1. Never torn: every value returned was written whole by one update of
//     one slot, and belongs to the key asked for.
//  2. No false hits: a hit is reported only for a node that was live with
//     that key at some instant during the lookup.
//  3. No missed live keys: a key live for the whole lookup is found, or
//     the lookup reports shm.ErrRetry. A walk can leave bucket b's chain
//     only through a node whose seq changed or whose bucket is not b
//     (recycled), and both restart the walk.
//  4. Wait-free, bounded: at most abi.MaxRetries × (capacity+1) node
//     visits, no locks, no syscalls. A chain that leaves the table or
//     loops (corrupt memory) returns shm.ErrCorrupt.
//  5. Full table: Insert fails with shm.ErrFull and increments the
//     header's insert_full counter; nothing stored is evicted.
//  6. Crash safety: every writer step is one aligned store leaving a state
//     that readers accept as consistent or retry; a writer killed at any
//     point leaves the table readable. OpenWriter after a crash rebuilds
//     the free list and unlinks anything not provably live.
//
// # Ordering
//
// Insert: I2 fill the node while odd, I4 seq=even, I6 publish the bucket
// head. Delete: D1 unlink (the node's next unchanged), D3 seq=odd, then
// recycle. Data change (SetData, structure writer): S1 seq=odd, S3 store
// the data, S4 seq=even (s+2); the node stays linked, keeps its key and
// its slots, and readers that saw it odd or copied data across it retry
// (L4, L6 and L8's final seq check), so the data column is never torn. Slot update: U1 seq=odd, U2 value, U3 seq=even. Lookup: L3 read
// seq, L5 read key/bucket/next, L6 re-read seq, L7 check bucket, L8 copy
// slots under their seqcounts and re-check the node seq. I4→L6 and
// I6→L1 pair as publication; D3 pairs with L6; U1/U3 pair with L8. Go's
// sync/atomic operations are sequentially consistent, which provides
// every barrier; the C twin uses smp_wmb/smp_rmb at the numbered points.
// The protocol is model-checked with spin (model/rcuhash.pml).
//
// # Errors
//
// Errors wrap shm.ErrNotFound, shm.ErrRetry, shm.ErrCorrupt, shm.ErrFull,
// shm.ErrReadOnly, ErrExists or ErrShortBuffer with the table's name.
//
// # Lifetimes
//
// A Table is a view of its region, valid until the region is closed.
package rcuhash
