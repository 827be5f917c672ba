// Package abi is the single source of truth for the binary layout of the
// kushm shared region: constants and structures shared by the Go code and
// the kernel module. The C header kmod/include/generated/kushm_abi.h is
// generated from this file (go generate); a test checks that every struct
// here has the offsets docs/region-format.md gives, and CI fails when the
// generated header is stale.
//
// Every structure has fixed-size fields, explicit padding and natural
// alignment, so that C reads and writes it the same way. All integers are
// little-endian (the only byte order kushm supports).
//
// The package holds the whole ABI, in three parts:
//
//   - abi.go: constants and structs (this file; cgen emits it as C);
//   - schema.go: the columns of every well-known section with their
//     merge rules (Sections), from which the daemon builds its schema and
//     tools/kgen generates the module's kmod/include/generated/kushm_columns.h;
//     its doc comment shows how to add a section;
//   - codec.go (and info.go): the one codec of each layout other packages
//     read or write, and offset constants derived from the structs. No
//     other package writes a literal region offset: tools/offsetcheck
//     (make offset-check) fails on one.
//
// Errors: ErrShort (a buffer shorter than its layout) and ErrSchema (a
// malformed declaration), wrapped with what was being decoded.
package abi

//go:generate go run ./cgen -o ../../kmod/include/generated/kushm_abi.h
//go:generate go run ../../tools/kgen/cmd/kgen -what columns -o ../../kmod/include/generated/kushm_columns.h

// Region identity.
const (
	// Magic is "KUSHMREG" read as a little-endian uint64. The producer
	// stores it last when it creates a region, so a reader that sees it
	// sees a complete header.
	Magic uint64 = 0x4745524d4853554b

	// ABIMajor changes on any incompatible layout change; readers refuse
	// a major they do not know.
	ABIMajor = 1
	// ABIMinor grows when fields or section kinds are added compatibly:
	// a reader accepts any minor of its major, and every addition uses
	// bytes an older minor wrote as zero, whose zero keeps the older
	// meaning (docs/region-format.md §11). 1.1: the valid-mask column
	// kind. 1.2: the header's control_rejected, and the column merge
	// rule (byte 55 of kushm_column, the high byte of 1.1's u16 kind).
	// 1.3: the info section's entries are data (tab-separated fields).
	// 1.4: the ColU16 column type, the syscalls slot's histogram
	// (SyscallSlotSize) and the control section's threshold rules.
	// 1.5: the rcuhash header's swept (rows the producer removed because
	// their process was gone). 1.6: the header's producer_pidns, so a
	// reader checks the producer's pid only in the producer's namespace.
	ABIMinor = 6
)

// Fixed sizes of the header area.
const (
	HeaderSize        = 256  // sizeof(struct kushm_header)
	SectionTableOff   = 256  // the section table follows the header
	SectionEntrySize  = 64   // sizeof(struct kushm_section)
	HeaderAreaSize    = 4096 // the header page; sections start after it
	MaxSections       = (HeaderAreaSize - SectionTableOff) / SectionEntrySize
	ColumnEntrySize   = 64 // sizeof(struct kushm_column)
	SectionNameLen    = 16
	ColumnNameLen     = 32
	ColumnUnitLen     = 16
	ProducerNameLen   = 32
	CacheLine         = 64
	MaxCPUs           = 4096 // a reader refuses a region claiming more
	MaxRowSlots       = 64   // slots per atomicarr row (one valid bit each)
	MaxColumns        = 4096 // entries in the schema section
	MaxHashCapacity   = 1 << 24
	MaxValueSize      = 4096 // bytes of one rcuhash value slot
	MaxRingRecordSize = 65536
)

// Producer kinds (kushm_header.producer_kind).
const (
	ProducerKernel = 1 // the kushm kernel module
	ProducerDaemon = 2 // the userspace provider daemon (kushm serve)
	ProducerApp    = 3 // an application's own region (user tracepoints)
)

// Producer states (kushm_header.state).
const (
	StateStarting = 1 // being laid out; readers must not trust sections
	StateRunning  = 2 // the producer samples and refreshes the heartbeat
	StateStopped  = 3 // the producer stopped cleanly; data is final
)

// Section kinds (kushm_section.kind).
const (
	SecSchema    = 1 // array of struct kushm_column: the column names
	SecAtomicArr = 2 // per-CPU rows of u64 slots with a row seqcount
	SecRCUHash   = 3 // fixed-capacity hash table, seq-validated reads
	SecControl   = 4 // struct kushm_control: written by users
	SecRing      = 5 // overwrite ring of fixed-size records
	SecText      = 6 // UTF-8 text, NUL padded, written before publication
)

// Section flags (kushm_section.flags).
const (
	// SecFlagProducer: only the producer writes it; readers map it
	// read-only (the kernel module refuses a writable mapping).
	SecFlagProducer = 1 << 0
	// SecFlagUserWritable: users with write access may write it; the
	// producer validates every value it reads from it.
	SecFlagUserWritable = 1 << 1
	// SecFlagExternal: the section lives in the companion file
	// "<region path>.ctl" (userspace producers, where write permission
	// is per file) at offset kushm_section.offset of that file.
	SecFlagExternal = 1 << 2
)

// Column types (kushm_column.type).
const (
	ColU64   = 1 // little-endian u64
	ColS64   = 2 // little-endian s64
	ColU32   = 3 // little-endian u32
	ColChars = 4 // NUL-padded bytes, kushm_column.size long
	// ColU16: little-endian u16; a column of size 2n is an array of n of
	// them, merged element by element (the syscalls histogram; ABI 1.4).
	ColU16 = 5
)

// Column kinds (kushm_column.kind): how a generic reader presents it.
const (
	ColCounter = 1 // monotonic count: deltas and rates make sense
	ColGauge   = 2 // a level: shown as is
	ColKey     = 3 // the key of a hash table entry
	ColLabel   = 4 // a label (comm, name)
	// ColValidMask: a u64 in the node data whose bit i says whether the
	// value column with ID i holds a reading; a column whose bit is clear
	// is "n/a", not 0 (ABI 1.1).
	ColValidMask = 5
)

// Column merge rules (kushm_column.merge, ABI 1.2): how a reader combines
// the values of one column over the slots of an rcuhash entry (one per
// CPU in the kernel producer), or over the rows of an atomicarr section
// for a machine total. Bits 0-3 are the rule; bits 4-7 a group number g:
// every rule skips the slots whose MergeWelfordCount column of group g
// is 0 (when the section has one). docs/region-format.md §4.1 gives the
// arithmetic byte-exactly.
const (
	// MergeUnspecified: the merge byte of key, label and valid-mask
	// columns (never merged), so that a 1.1 reader, which reads kind
	// as a u16, still recognises them; on a value column, a 1.1 region:
	// counters sum, other kinds are not merged.
	MergeUnspecified = 0
	// MergeNone: a value column that is not merged (per-CPU values
	// without a meaningful total). With one slot, that slot's value.
	MergeNone = 1
	MergeSum  = 2 // saturating sum
	MergeMin  = 3 // minimum over non-empty slots
	MergeMax  = 4 // maximum over non-empty slots
	MergeLast = 5 // the value of the last non-empty slot in slot order
	// The Welford group (one column of each per group, all u64): the
	// count (summed, saturating), the sum of samples (summed), the
	// mean (merged sum / merged count) and m2, the sum of squared
	// deviations (Chan et al.'s pairwise merge, exact integer cross
	// term, folded in slot order; internal/sysstat.MergeInto).
	MergeWelfordCount = 6
	MergeWelfordSum   = 7
	MergeWelfordMean  = 8
	MergeWelfordM2    = 9
	MergeRuleMask     = 0x0f
	MergeGroupShift   = 4
)

// Header is struct kushm_header, at offset 0 of the region.
//
// Written by the producer. Magic, sizes and the section table are written
// once before Magic is published; HeartbeatNs, State, ProducerPID and
// Generation change while the producer runs and are read with atomic
// loads.
type Header struct {
	Magic             uint64                // 0: Magic
	ABIMajor          uint16                // 8
	ABIMinor          uint16                // 10
	HeaderSize        uint32                // 12: HeaderAreaSize
	RegionSize        uint64                // 16: bytes of the mapping
	PageSize          uint32                // 24: section alignment
	NCPUs             uint32                // 28: possible CPUs (rows per per-CPU section)
	ProducerKind      uint32                // 32: Producer*
	ProducerPID       uint32                // 36: 0 for the kernel
	CreatedRealNs     uint64                // 40: CLOCK_REALTIME at creation
	HeartbeatNs       uint64                // 48: CLOCK_MONOTONIC of the last refresh
	HeartbeatPeriodNs uint64                // 56: promised maximum gap between refreshes
	State             uint32                // 64: State*
	Flags             uint32                // 68: reserved, 0
	SectionTableOff   uint32                // 72: SectionTableOff
	SectionCount      uint32                // 76
	SectionEntrySize  uint32                // 80: SectionEntrySize
	ColumnEntrySize   uint32                // 84: ColumnEntrySize
	Generation        uint64                // 88: bumped when a producer (re)starts on this region
	ProducerName      [ProducerNameLen]byte // 96: NUL padded
	ControlRejected   uint64                // 128: control values the producer refused (ABI 1.2; atomic)
	ProducerPIDNS     uint64                // 136: inode of the producer's pid namespace, 0 unknown (ABI 1.6; atomic)
	Reserved          [112]byte             // 144
}

// Section is struct kushm_section, one entry of the section table.
// Written once, before the header's Magic is published.
type Section struct {
	Name     [SectionNameLen]byte // 0: NUL padded, unique
	Kind     uint32               // 16: Sec*
	Flags    uint32               // 20: SecFlag*
	Offset   uint64               // 24: page aligned, from region start (or companion file start)
	Size     uint64               // 32: page multiple
	ElemSize uint32               // 40: row stride / node stride / record size / column size
	Count    uint32               // 44: rows / capacity / records / columns
	ColFirst uint32               // 48: first column in the schema section
	ColCount uint32               // 52: number of columns
	Aux0     uint32               // 56: kind-specific (atomicarr: slots per row)
	Aux1     uint32               // 60: kind-specific, 0 if unused
}

// Column is struct kushm_column, one element of the schema section. It
// names one field of a section's element so a generic reader can decode
// any section.
type Column struct {
	Name   [ColumnNameLen]byte // 0
	Unit   [ColumnUnitLen]byte // 32: "count", "ns", "cycles", "bytes", "celsius" ...
	Offset uint32              // 48: byte offset of the field in the element (row, node value)
	Type   uint16              // 52: Col{U64,S64,U32,Chars}
	Kind   uint8               // 54: Col{Counter,Gauge,Key,Label,ValidMask}
	Merge  uint8               // 55: Merge* rule | group<<MergeGroupShift (1.2; 0 in 1.1)
	Size   uint32              // 56: bytes
	ID     uint32              // 60: catalogue id (pmu preset, msr id), or 0
}

// RowHeader starts every row of an atomicarr section. The row's u64
// slots follow it. Row stride (Section.ElemSize) is a multiple of
// CacheLine so rows of different CPUs never share a cache line.
type RowHeader struct {
	Seq    uint64 // 0: seqcount, odd while the row's writer updates it
	TimeNs uint64 // 8: CLOCK_MONOTONIC of the sample
	Valid  uint64 // 16: bit i set: slot i holds a real reading
	Flags  uint64 // 24: reserved, 0
}

// RowSlotsOff is the offset of slot 0 in an atomicarr row.
const RowSlotsOff = 32

// HashHeader starts an rcuhash section. Written once at creation except
// the statistics (atomic) and FreeHead (writer-private).
type HashHeader struct {
	Magic      uint32 // 0: HashMagic
	NBuckets   uint32 // 4: power of two, equal to Capacity (bucket b's head lives in node b)
	Capacity   uint32 // 8: nodes
	NodeSize   uint32 // 12: node stride, multiple of CacheLine
	NSlots     uint32 // 16: value slots per node (1, or NCPUs for per-CPU writers)
	ValueSize  uint32 // 20: bytes of one slot's value, multiple of 8
	SlotsOff   uint32 // 24: offset of slot 0 in a node
	SlotStride uint32 // 28: bytes between slots (multiple of 8; of CacheLine when NSlots > 1)
	DataOff    uint32 // 32: offset of the node's immutable data in a node (RCUNodeSize)
	DataSize   uint32 // 36: bytes of node data (multiple of 8, may be 0)
	BucketsOff uint32 // 40: 0: bucket b's chain head is node b's Head field
	NodesOff   uint32 // 44: from section start; Capacity nodes
	Count      uint64 // 48: live nodes
	Inserts    uint64 // 56: successful inserts
	Deletes    uint64 // 64
	InsertFull uint64 // 72: inserts refused because the table was full
	FreeHead   uint32 // 80: reserved for the writer; readers ignore it
	Flags      uint32 // 84
	// Swept counts rows the producer removed because their process was
	// gone (its periodic sweep, or a reused pid found in the table):
	// rows that outlived their process, repaired (ABI 1.5).
	Swept    uint64 // 88
	Reserved [32]uint8
}

// HashMagic is "HASH" little-endian.
const HashMagic = 0x48534148

// HashHeaderSize is sizeof(struct kushm_hash_header).
const HashHeaderSize = 128

// Node is struct kushm_hnode, the fixed head of every rcuhash node. The
// node data (DataSize bytes) follows it, then NSlots value slots.
type Node struct {
	Seq    uint32 // 0: even: live and stable; odd: free or changing
	Next   uint32 // 4: next node in the chain, index+1; 0 ends the chain
	Key    uint64 // 8
	Bucket uint32 // 16: the bucket the node is linked in
	// Head is the chain head of bucket i for the node at index i (index+1
	// of the bucket's first node, 0 if empty): buckets live inside the
	// node array so a key stored in its home node costs one cache miss.
	Head uint32 // 20
}

// RCUNodeSize is sizeof(struct kushm_hnode).
const RCUNodeSize = 24

// Slot is the head of one value slot; the value follows it.
type Slot struct {
	Seq uint32 // 0: seqcount of this slot, odd while its writer updates it
	Pad uint32 // 4
}

// SlotHeadSize is sizeof(struct kushm_slot).
const SlotHeadSize = 8

// RingHeader starts a ring section; records of Section.ElemSize bytes
// follow at RingHeaderSize.
type RingHeader struct {
	Head     uint64 // 0: number of records ever reserved (next sequence)
	Lost     uint64 // 8: records dropped by the writer (e.g. too large)
	Reserved [48]uint8
}

// RingHeaderSize is sizeof(struct kushm_ring_header).
const RingHeaderSize = 64

// Record is the head of one ring record; Len bytes of payload follow.
type Record struct {
	Seq  uint64 // 0: 2*n+1 while record n is written, 2*n+2 once complete
	Len  uint32 // 8: payload bytes
	Type uint32 // 12: application-defined (tracepoint id)
	TsNs uint64 // 16: CLOCK_MONOTONIC
	CPU  uint32 // 24
	PID  uint32 // 28
}

// RecordHeadSize is sizeof(struct kushm_record).
const RecordHeadSize = 32

// Control values, written by users, validated by the producer.
const (
	ControlMagic = 0x4c525443 // "CTRL"
	// NumSyscallOverrides is the number of per-syscall threshold
	// overrides; syscall numbers at or above it cannot be overridden.
	NumSyscallOverrides = 512

	// Validation bounds the producer applies (out of range: ignored and
	// counted, the default is used).
	MinIntervalUs = 10_000     // 10 ms
	MaxIntervalUs = 60_000_000 // 60 s
	// HeartbeatEveryUs: however long the sampling interval, a producer
	// refreshes the heartbeat and reads the control section at least
	// this often, so a lowered interval takes effect within it and a
	// dead producer is seen within seconds, not minutes.
	HeartbeatEveryUs = 250_000
	DefaultKx100     = 300 // threshold = mean + 3.00 sigma
	MaxKx100         = 10_000
	DefaultWarmup    = 64 // samples before a threshold exists
	MaxWarmup        = 1 << 20
	ControlHeadSize  = 64
	ControlSize      = ControlHeadSize + 16*NumSyscallOverrides

	// Threshold modes (Control.ThMode, bits 0-3 of a syscall's policy
	// word; docs/helpers.md): out of range means ThModeSigma.
	ThModeInherit  = 0 // policy word: the global mode; ThMode: k·σ
	ThModeSigma    = 1 // mean + k·σ of the window's Welford statistics
	ThModeQuantile = 2 // the q-quantile's bucket bound × factor
	ThModeInterp   = 3 // the q-quantile interpolated in its bucket × factor

	DefaultQppm        = 999_000 // q = 0.999
	MaxQppm            = 999_999
	DefaultFactorX1000 = 1000 // × 1.0
	MaxFactorX1000     = 1_000_000
	// Decay: each CPU halves its own slot of a syscall every 2^h of its
	// samples (Control.DecayShift = h).
	DefaultDecayShift = 13
	MinDecayShift     = 4
	MaxDecayShift     = 40
)

// Control is struct kushm_control, the user-writable section. Readers of
// it (the producer, kfuncs) load each field once (READ_ONCE) and validate
// it; nothing in it is ever used as a pointer, an offset or a size.
type Control struct {
	Magic      uint32 // 0: ControlMagic, written by the producer at creation
	Version    uint32 // 4: 1
	IntervalUs uint32 // 8: requested sampling interval; 0 = producer default
	Kx100      uint32 // 12: k*100 of the adaptive threshold; 0 = DefaultKx100
	Warmup     uint32 // 16: samples before a threshold exists; 0 = DefaultWarmup
	Flags      uint32 // 20: reserved
	Reserved0  uint64 // 24: 0 (was rejected, which users could overwrite: Header.ControlRejected since ABI 1.2)
	// Latency thresholds (ABI 1.4, docs/helpers.md): the global mode and
	// quantile parameters, and the decay of the per-CPU slots.
	ThMode      uint32 // 32: ThMode*; 0 = k·σ
	Qppm        uint32 // 36: q·10^6 of the quantile modes; 0 = DefaultQppm
	FactorX1000 uint32 // 40: factor·1000 of the quantile modes; 0 = DefaultFactorX1000
	DecayShift  uint32 // 44: h; 0 = DefaultDecayShift
	Reserved    [16]uint8
	// SyscallOverrideNs[nr]: a fixed threshold for syscall nr in ns; 0 = adaptive.
	SyscallOverrideNs [NumSyscallOverrides]uint64
	// SyscallPolicy[nr]: syscall nr's own rule, 0 = the global one; bits
	// 0-3 mode (ThMode*), 4-31 k·100 (k·σ) or q·10^6 (quantile modes),
	// 32-63 factor·1000 (quantile modes); a 0 field inherits the global value.
	SyscallPolicy [NumSyscallOverrides]uint64
}

// ProcData is the immutable node data of the "procs" table.
type ProcData struct {
	Comm  [16]byte // 0: task comm, NUL padded
	PID   uint32   // 16: tgid
	UID   uint32   // 20
	Valid uint64   // 24: bit i: counter i of the value is measured for this process
}

// ProcCounters is the number of u64 counters in a ProcStat: the slot
// index is the pmu preset id; ProcCounterRuntime is the on-CPU time.
const (
	ProcCounters       = 16
	ProcCounterRuntime = 15
)

// ProcStat is one value slot of the "procs" table: counters indexed by pmu
// preset id (0..14) and the task's on-CPU time in ns at index 15.
type ProcStat struct {
	Counter [ProcCounters]uint64
}

// SyscallStat is one value slot of the "syscalls" table (one per CPU in the
// kernel producer): integer Welford statistics of a syscall's latency.
// Readers merge the slots of all CPUs (Chan et al.'s parallel formula).
type SyscallStat struct {
	Count    uint64 // 0: samples
	MeanNs   uint64 // 8: running mean, ns
	M2       uint64 // 16: sum of squared deviations, ns^2, saturating at 2^64-1
	MaxNs    uint64 // 24
	MinNs    uint64 // 32
	SumNs    uint64 // 40
	Outliers uint64 // 48: samples above the threshold
	LastNs   uint64 // 56: the latest sample
}

// The "syscalls" table's slot (ABI 1.4): a SyscallStat of the window,
// then Total (u64, samples ever), Decays (u64, halvings), then
// SyscallHistBuckets u16 bucket counts of the latency histogram: bucket 0
// holds 0 ns, bucket b in 1..SyscallHistBuckets-2 is Prometheus native
// histogram bucket b-1+HistMinIndex of schema HistSchema in seconds,
// i.e. latencies in (floor(2^((b-2+HistMinIndex)/8)·10^9),
// floor(2^((b-1+HistMinIndex)/8)·10^9)] ns, and the last bucket holds
// everything above 107.6 s (docs/helpers.md, "Latency histograms").
// Readers accept the 64-byte slot of ABI ≤ 1.3 (no histogram).
const (
	HistSchema         = 3
	HistMinIndex       = -239
	HistMaxIndex       = 54
	SyscallHistBuckets = HistMaxIndex - HistMinIndex + 3 // 296
	SyscallTotalOff    = 64
	SyscallDecaysOff   = 72
	SyscallBucketsOff  = 80
	SyscallSlotSize    = SyscallBucketsOff + 2*SyscallHistBuckets // 672
)

// CgroupData is the immutable node data of the "cgroups" table (key: the
// cgroup v2 id, the inode number of the cgroup's directory, as
// bpf_get_current_cgroup_id returns it; CgroupKeyIdle and
// CgroupKeyOverflow are the two keys that are not cgroups).
type CgroupData struct {
	Valid uint64 // 0: bit i: counter i of the value is measured
	// Groups: bits 4i..4i+3 say how counter i was counted: 0 exactly
	// (not a multiplexed event: on-CPU time, switches, software
	// counters without times), g+1 as a member of event group g, whose
	// time enabled and running are CgroupStat.Enabled[g]/Running[g]. A
	// ratio of two counters is only meaningful when both are in the same
	// group (or both exact).
	Groups uint64 // 8
}

// Counters and groups of a CgroupStat; the special keys.
const (
	CgroupCounters    = 16 // pmu preset ids 0..14, on-CPU time (ns) at 15
	CgroupGroups      = 4
	CgroupKeyIdle     = 0                  // the idle task: time no cgroup ran
	CgroupKeyOverflow = 0xffffffffffffffff // counts of cgroups that found the table full
)

// CgroupStat is one value slot of the "cgroups" table, one slot per CPU:
// counters indexed like ProcStat, then per event group the ns the group
// was enabled and running (on a hardware counter) while the cgroup ran.
// Running < Enabled means the group was multiplexed: its counters are
// scaled by a reader (count x enabled / running) and marked as such.
type CgroupStat struct {
	Counter [CgroupCounters]uint64 // 0
	Enabled [CgroupGroups]uint64   // 128
	Running [CgroupGroups]uint64   // 160
}

// Slots of a "pmu_mux" row: how much of the time each event group of the
// same CPU's "pmu" row was really counted. Slot 2g is group g's time
// enabled (ns), 2g+1 its time running on a counter; slot PMUMuxMap holds
// 4 bits per pmu preset p (bits 4p..4p+3): g+1 when p is counted in group
// g, 0 when it is not counted or not in a group whose times are kept.
// Presets of one group were counted over the same instants: a ratio of
// two presets (IPC, MPKI) is only meaningful when they share a group.
const (
	PMUMuxGroups = 8
	PMUMuxMap    = 2 * PMUMuxGroups
	NumPMUMux    = PMUMuxMap + 1
)

// ProcMuxData is the node data of the "procs_mux" table (key: the pid of
// a process with hardware counters of its own): 4 bits per pmu preset, as
// CgroupData.Groups (g+1: counted in event group g; 0: not known).
type ProcMuxData struct {
	Groups uint64 // 0
}

// ProcMux is the value of a "procs_mux" node: per event group of the
// process's counters, the ns the group was enabled and running on a
// counter since the daemon started watching it.
type ProcMux struct {
	Enabled [CgroupGroups]uint64 // 0
	Running [CgroupGroups]uint64 // 32
}

// Well-known section names.
const (
	SecNameSchema   = "schema"
	SecNamePMU      = "pmu"       // atomicarr: per-CPU pmu presets (slot = preset id)
	SecNameMSR      = "msr"       // atomicarr: per-CPU MSR catalogue values (slot = msr id)
	SecNameProcs    = "procs"     // rcuhash: pid -> ProcData + ProcStat
	SecNameSyscalls = "syscalls"  // rcuhash: syscall nr -> SyscallStat per CPU
	SecNameControl  = "control"   // Control
	SecNameInfo     = "info"      // text: what is unavailable and why
	SecNameTrace    = "trace"     // ring: user tracepoint events
	SecNameCgroups  = "cgroups"   // rcuhash: cgroup id -> CgroupData + CgroupStat per CPU
	SecNameProcsMux = "procs_mux" // rcuhash: pid -> ProcMuxData + ProcMux: how long the process's hardware counters were counted
	SecNamePMUMux   = "pmu_mux"   // atomicarr: per CPU, time enabled/running of the pmu row's event groups
	SecNameCPUTime  = "cputime"   // atomicarr: per-CPU time accounting in ns (slot = CPUTime*)
)

// Slots of the cputime section: cumulative ns since boot, from the
// kernel's cpustat (/proc/stat for the daemon). Busy is user + nice +
// system + irq + softirq (guest time is inside user); iowait is idle time
// waiting for I/O; steal is time the hypervisor ran something else.
const (
	CPUTimeBusy   = 0
	CPUTimeUser   = 1 // user + nice
	CPUTimeSystem = 2 // system + irq + softirq
	CPUTimeIdle   = 3
	CPUTimeIOWait = 4
	CPUTimeSteal  = 5
	NumCPUTime    = 6
)

// The info section's lines (docs/region-format.md §9; codec in info.go).
// A line is a note ("# text") or an entry: InfoUnavailable, then the
// fields what, source, kind, errno and cause, separated by InfoSep. The
// cause (the rest of the line) completes "WHAT: not available on this
// machine, because CAUSE", a sentence readers compose; errno is the
// failing call's error number in decimal, 0 if none.
const (
	InfoNote        = "#"
	InfoUnavailable = "unavailable"
	InfoSep         = "\t"

	// Sources: what tried to read it.
	InfoSourcePerf     = "perf"     // perf events (perf_event_open, perf_event_create_kernel_counter)
	InfoSourceMSR      = "msr"      // MSRs (/dev/cpu/N/msr, rdmsr in the module; or every MSR source)
	InfoSourcePerfMSR  = "perf-msr" // the perf msr PMU
	InfoSourcePowercap = "powercap" // /sys/class/powercap energy counters
	InfoSourceProcfs   = "procfs"   // /proc files (/proc/stat, /proc/<pid>/stat)
	InfoSourceConfig   = "config"   // the producer's configuration leaves it out

	// Kinds: how it failed (internal/errs maps them to its sentinels).
	InfoKindPermission   = "permission"    // a privilege is missing
	InfoKindNotSupported = "not-supported" // the hardware or kernel cannot
	InfoKindNoSource     = "no-source"     // the source is absent (no PMU, no msr driver)
	InfoKindNotAllowed   = "not-allowed"   // the MSR allowlist refuses it
	InfoKindNotAvailable = "not-available" // none of the above
)

// Table ids: the table argument of bpf_kushm_table_lookup.
const (
	TableProcs    = 0
	TableSyscalls = 1
)

// Hash is the bucket hash of rcuhash, identical in C (kushm_hash): the
// 64-bit finalizer of MurmurHash3. The bucket is Hash(key) & (NBuckets-1).
func Hash(key uint64) uint64 {
	key ^= key >> 33
	key *= 0xff51afd7ed558ccd
	key ^= key >> 33
	key *= 0xc4ceb9fe1a85ec53
	key ^= key >> 33
	return key
}

// MaxRetries bounds the retries of a seq-validated read before it gives up
// with a "retry" error; MaxChainWalk bounds a chain walk (a chain longer
// than the capacity is a cycle in corrupt memory).
const MaxRetries = 16
