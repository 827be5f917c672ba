package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"
)

// This file holds the one codec of each fixed layout: every reader and
// writer of these bytes, in any package, goes through it, so no region
// offset is written outside this package (the offsetcheck analyzer run
// by `make check` enforces it).

// ErrShort is returned when a buffer is shorter than the layout it
// should hold.
var ErrShort = errors.New("buffer shorter than the layout")

// Decode fills *v, a pointer to one of this package's fixed-size structs
// (Header, Section, Column, Control, ...), from the start of b
// (little-endian, no alignment needed). It fails with ErrShort when b
// is shorter than the struct.
func Decode(b []byte, v any) error {
	n := binary.Size(v)
	if n < 0 {
		return fmt.Errorf("decode %T: not a fixed-size layout", v)
	}
	if len(b) < n {
		return fmt.Errorf("decode %T: %d bytes, want %d: %w", v, len(b), n, ErrShort)
	}
	_, err := binary.Decode(b, binary.LittleEndian, v)
	return err
}

// Encode writes v, one of this package's fixed-size structs (or a
// pointer to one), at the start of b.
func Encode(b []byte, v any) error {
	n := binary.Size(v)
	if n < 0 {
		return fmt.Errorf("encode %T: not a fixed-size layout", v)
	}
	if len(b) < n {
		return fmt.Errorf("encode %T: %d bytes, want %d: %w", v, len(b), n, ErrShort)
	}
	_, err := binary.Encode(b, binary.LittleEndian, v)
	return err
}

// Entry returns c as the schema entry a producer writes (struct
// kushm_column). It fails for a template or a name or unit that does not
// fit with its NUL.
func (c ColumnDecl) Entry() (Column, error) {
	var e Column
	switch {
	case c.Each != "":
		return e, fmt.Errorf("column template for catalogue %q: expand it first: %w", c.Each, ErrSchema)
	case len(c.Name) >= ColumnNameLen:
		return e, fmt.Errorf("column name %q longer than %d bytes: %w", c.Name, ColumnNameLen-1, ErrSchema)
	case len(c.Unit) >= ColumnUnitLen:
		return e, fmt.Errorf("column %q: unit %q longer than %d bytes: %w", c.Name, c.Unit, ColumnUnitLen-1, ErrSchema)
	}
	copy(e.Name[:], c.Name)
	copy(e.Unit[:], c.Unit)
	e.Offset, e.Type, e.Kind, e.Merge, e.Size, e.ID = c.Offset, c.Type, c.Kind, c.Merge, c.Size, c.ID
	return e, nil
}

// Offsets of the fields other packages load or store in place, with
// atomics or through pointers into the mapping: derived from the structs
// above, so they cannot drift from them (or from the C header).
const (
	HeaderMagicOff           = unsafe.Offsetof(Header{}.Magic)
	HeaderPIDOff             = unsafe.Offsetof(Header{}.ProducerPID)
	HeaderHeartbeatOff       = unsafe.Offsetof(Header{}.HeartbeatNs)
	HeaderPeriodOff          = unsafe.Offsetof(Header{}.HeartbeatPeriodNs)
	HeaderStateOff           = unsafe.Offsetof(Header{}.State)
	HeaderGenerationOff      = unsafe.Offsetof(Header{}.Generation)
	HeaderControlRejectedOff = unsafe.Offsetof(Header{}.ControlRejected)
	HeaderPIDNSOff           = unsafe.Offsetof(Header{}.ProducerPIDNS)

	SectionFlagsOff = unsafe.Offsetof(Section{}.Flags)

	RowSeqOff   = unsafe.Offsetof(RowHeader{}.Seq)
	RowTimeOff  = unsafe.Offsetof(RowHeader{}.TimeNs)
	RowValidOff = unsafe.Offsetof(RowHeader{}.Valid)

	HashCountOff      = unsafe.Offsetof(HashHeader{}.Count)
	HashInsertsOff    = unsafe.Offsetof(HashHeader{}.Inserts)
	HashDeletesOff    = unsafe.Offsetof(HashHeader{}.Deletes)
	HashInsertFullOff = unsafe.Offsetof(HashHeader{}.InsertFull)
	HashSweptOff      = unsafe.Offsetof(HashHeader{}.Swept)

	NodeSeqOff    = unsafe.Offsetof(Node{}.Seq)
	NodeNextOff   = unsafe.Offsetof(Node{}.Next)
	NodeKeyOff    = unsafe.Offsetof(Node{}.Key)
	NodeBucketOff = unsafe.Offsetof(Node{}.Bucket)
	NodeHeadOff   = unsafe.Offsetof(Node{}.Head)

	ControlMagicOff      = unsafe.Offsetof(Control{}.Magic)
	ControlVersionOff    = unsafe.Offsetof(Control{}.Version)
	ControlIntervalUsOff = unsafe.Offsetof(Control{}.IntervalUs)
	ControlKx100Off      = unsafe.Offsetof(Control{}.Kx100)
	ControlWarmupOff     = unsafe.Offsetof(Control{}.Warmup)
	ControlOverridesOff  = unsafe.Offsetof(Control{}.SyscallOverrideNs)
	// The threshold rules (ABI 1.4).
	ControlThModeOff      = unsafe.Offsetof(Control{}.ThMode)
	ControlQppmOff        = unsafe.Offsetof(Control{}.Qppm)
	ControlFactorX1000Off = unsafe.Offsetof(Control{}.FactorX1000)
	ControlDecayShiftOff  = unsafe.Offsetof(Control{}.DecayShift)
	ControlPolicyOff      = unsafe.Offsetof(Control{}.SyscallPolicy)

	ProcDataCommOff  = unsafe.Offsetof(ProcData{}.Comm)
	ProcDataPIDOff   = unsafe.Offsetof(ProcData{}.PID)
	ProcDataUIDOff   = unsafe.Offsetof(ProcData{}.UID)
	ProcDataValidOff = unsafe.Offsetof(ProcData{}.Valid)

	SlotSeqOff = unsafe.Offsetof(Slot{}.Seq)

	RingHeadOff = unsafe.Offsetof(RingHeader{}.Head)
	RingLostOff = unsafe.Offsetof(RingHeader{}.Lost)

	RecordSeqOff = unsafe.Offsetof(Record{}.Seq)
	RecordLenOff = unsafe.Offsetof(Record{}.Len) // Len, then Type: one u64 word
	RecordTsOff  = unsafe.Offsetof(Record{}.TsNs)
	RecordCPUOff = unsafe.Offsetof(Record{}.CPU) // CPU, then PID: one u64 word
)

var le = binary.LittleEndian

// DecodeProcData decodes the node data of a "procs" entry; b must hold
// sizeof(ProcData) bytes (ErrShort otherwise).
func DecodeProcData(b []byte) (ProcData, error) {
	var d ProcData
	if len(b) < int(unsafe.Sizeof(d)) {
		return d, fmt.Errorf("proc data: %d bytes: %w", len(b), ErrShort)
	}
	copy(d.Comm[:], b[ProcDataCommOff:])
	d.PID = le.Uint32(b[ProcDataPIDOff:])
	d.UID = le.Uint32(b[ProcDataUIDOff:])
	d.Valid = le.Uint64(b[ProcDataValidOff:])
	return d, nil
}

// Put encodes d into b (sizeof(ProcData) bytes).
func (d *ProcData) Put(b []byte) {
	_ = b[unsafe.Sizeof(*d)-1]
	copy(b[ProcDataCommOff:], d.Comm[:])
	le.PutUint32(b[ProcDataPIDOff:], d.PID)
	le.PutUint32(b[ProcDataUIDOff:], d.UID)
	le.PutUint64(b[ProcDataValidOff:], d.Valid)
}

// DecodeSyscallStat decodes one value slot of the "syscalls" table; b
// must hold at least sizeof(SyscallStat) bytes (it panics otherwise, as
// a slice index would: callers size slots from the table's geometry).
func DecodeSyscallStat(b []byte) SyscallStat {
	_ = b[unsafe.Sizeof(SyscallStat{})-1]
	return SyscallStat{
		Count: le.Uint64(b[unsafe.Offsetof(SyscallStat{}.Count):]), MeanNs: le.Uint64(b[unsafe.Offsetof(SyscallStat{}.MeanNs):]),
		M2: le.Uint64(b[unsafe.Offsetof(SyscallStat{}.M2):]), MaxNs: le.Uint64(b[unsafe.Offsetof(SyscallStat{}.MaxNs):]),
		MinNs: le.Uint64(b[unsafe.Offsetof(SyscallStat{}.MinNs):]), SumNs: le.Uint64(b[unsafe.Offsetof(SyscallStat{}.SumNs):]),
		Outliers: le.Uint64(b[unsafe.Offsetof(SyscallStat{}.Outliers):]), LastNs: le.Uint64(b[unsafe.Offsetof(SyscallStat{}.LastNs):]),
	}
}

// Words returns s as the u64 words of a slot, in layout order (what
// rcuhash's word writers store).
func (s *SyscallStat) Words() [8]uint64 {
	return [8]uint64{s.Count, s.MeanNs, s.M2, s.MaxNs, s.MinNs, s.SumNs, s.Outliers, s.LastNs}
}

// ControlParams are the scalar fields of the control section.
type ControlParams struct {
	IntervalUs, Kx100, Warmup uint32
}

// DecodeControlParams decodes the scalar fields of a control section b
// (at least ControlHeadSize bytes). A live section changes under the
// reader: use it on a copy, or read fields with atomics at the *Off
// constants.
func DecodeControlParams(b []byte) (ControlParams, error) {
	if len(b) < ControlHeadSize {
		return ControlParams{}, fmt.Errorf("control: %d bytes: %w", len(b), ErrShort)
	}
	return ControlParams{IntervalUs: le.Uint32(b[ControlIntervalUsOff:]), Kx100: le.Uint32(b[ControlKx100Off:]), Warmup: le.Uint32(b[ControlWarmupOff:])}, nil
}

// ControlOverride returns syscall nr's override from control section b
// (0 when nr is out of range or b too short).
func ControlOverride(b []byte, nr int) uint64 {
	off := int(ControlOverridesOff) + 8*nr
	if nr < 0 || nr >= NumSyscallOverrides || len(b) < off+8 {
		return 0
	}
	return le.Uint64(b[off:])
}
