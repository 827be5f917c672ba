package abi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// TestLayout pins every struct's size and the offsets docs/region-format.md
// gives. A change here is an ABI change: bump ABIMajor or ABIMinor.
func TestLayout(t *testing.T) {
	check := func(name string, got, want uintptr) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	var h Header
	check("sizeof(Header)", unsafe.Sizeof(h), HeaderSize)
	check("Header.HeartbeatNs", unsafe.Offsetof(h.HeartbeatNs), 48)
	check("Header.State", unsafe.Offsetof(h.State), 64)
	check("Header.SectionCount", unsafe.Offsetof(h.SectionCount), 76)
	check("Header.Generation", unsafe.Offsetof(h.Generation), 88)
	check("Header.ProducerName", unsafe.Offsetof(h.ProducerName), 96)
	check("Header.ControlRejected", unsafe.Offsetof(h.ControlRejected), 128)
	check("Header.ProducerPIDNS", unsafe.Offsetof(h.ProducerPIDNS), 136)
	var s Section
	check("sizeof(Section)", unsafe.Sizeof(s), SectionEntrySize)
	check("Section.Offset", unsafe.Offsetof(s.Offset), 24)
	check("Section.ElemSize", unsafe.Offsetof(s.ElemSize), 40)
	check("Section.Aux1", unsafe.Offsetof(s.Aux1), 60)
	var c Column
	check("sizeof(Column)", unsafe.Sizeof(c), ColumnEntrySize)
	check("Column.Offset", unsafe.Offsetof(c.Offset), 48)
	check("Column.ID", unsafe.Offsetof(c.ID), 60)
	var r RowHeader
	check("sizeof(RowHeader)", unsafe.Sizeof(r), RowSlotsOff)
	var hh HashHeader
	check("sizeof(HashHeader)", unsafe.Sizeof(hh), HashHeaderSize)
	check("HashHeader.Count", unsafe.Offsetof(hh.Count), 48)
	check("HashHeader.InsertFull", unsafe.Offsetof(hh.InsertFull), 72)
	check("HashHeader.FreeHead", unsafe.Offsetof(hh.FreeHead), 80)
	check("HashHeader.Swept", unsafe.Offsetof(hh.Swept), 88)
	var n Node
	check("sizeof(Node)", unsafe.Sizeof(n), RCUNodeSize)
	check("Node.Key", unsafe.Offsetof(n.Key), 8)
	check("Node.Bucket", unsafe.Offsetof(n.Bucket), 16)
	check("Node.Head", unsafe.Offsetof(n.Head), 20)
	var sl Slot
	check("sizeof(Slot)", unsafe.Sizeof(sl), SlotHeadSize)
	var rh RingHeader
	check("sizeof(RingHeader)", unsafe.Sizeof(rh), RingHeaderSize)
	var rec Record
	check("sizeof(Record)", unsafe.Sizeof(rec), RecordHeadSize)
	var ctl Control
	check("sizeof(Control)", unsafe.Sizeof(ctl), ControlSize)
	check("Control.SyscallOverrideNs", unsafe.Offsetof(ctl.SyscallOverrideNs), ControlHeadSize)
	check("Control.ThMode", unsafe.Offsetof(ctl.ThMode), 32)
	check("Control.DecayShift", unsafe.Offsetof(ctl.DecayShift), 44)
	check("Control.SyscallPolicy", unsafe.Offsetof(ctl.SyscallPolicy), ControlHeadSize+8*NumSyscallOverrides)
	var pd ProcData
	check("sizeof(ProcData)", unsafe.Sizeof(pd), 32)
	var cd CgroupData
	check("sizeof(CgroupData)", unsafe.Sizeof(cd), 16)
	var cs CgroupStat
	check("sizeof(CgroupStat)", unsafe.Sizeof(cs), 192)
	check("CgroupStat.Enabled", unsafe.Offsetof(cs.Enabled), 128)
	check("CgroupStat.Running", unsafe.Offsetof(cs.Running), 160)
	var ps ProcStat
	check("sizeof(ProcStat)", unsafe.Sizeof(ps), 8*ProcCounters)
	var ss SyscallStat
	check("sizeof(SyscallStat)", unsafe.Sizeof(ss), 64)
	if MaxSections*SectionEntrySize+SectionTableOff > HeaderAreaSize {
		t.Error("section table overflows the header page")
	}
}

func TestMagicSpellsKUSHMREG(t *testing.T) {
	b := (*[8]byte)(unsafe.Pointer(new(uint64)))
	*(*uint64)(unsafe.Pointer(b)) = Magic
	if string(b[:]) != "KUSHMREG" {
		t.Fatalf("magic bytes %q", b[:])
	}
}

// TestHashVectors pins abi.Hash; the C kushm_hash must give the same
// values (kmod's userspace twin test reads testdata/vectors/hash.txt).
func TestHashVectors(t *testing.T) {
	data, err := os.ReadFile("testdata/hash.txt")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		var key, want uint64
		if _, err := fmtSscanf(line, &key, &want); err != nil {
			t.Fatalf("bad line %q: %v", line, err)
		}
		if got := Hash(key); got != want {
			t.Errorf("Hash(%#x) = %#x, want %#x", key, got, want)
		}
		n++
	}
	if n < 8 {
		t.Fatalf("only %d vectors", n)
	}
}

func TestGeneratedHeaderIsCurrent(t *testing.T) {
	h, err := os.ReadFile("../../kmod/include/generated/kushm_abi.h")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"#define KUSHM_MAGIC 0x4745524d4853554bULL",
		"struct kushm_header {",
		"struct kushm_hnode {",
		"KUSHM_STATIC_ASSERT(sizeof(struct kushm_control) == 8256",
		"static inline __u64 kushm_hash(__u64 key)",
	} {
		if !strings.Contains(string(h), want) {
			t.Errorf("generated header lacks %q (run go generate ./internal/abi)", want)
		}
	}
}

// TestCodecIsLayout: every ABI struct has no implicit padding, so the
// codec (encoding/binary over the struct) reads and writes exactly the
// bytes the C struct and the Go struct in the mapping have; and the
// specific codecs round-trip through the same bytes.
func TestCodecIsLayout(t *testing.T) {
	for _, v := range []any{&Header{}, &Section{}, &Column{}, &RowHeader{}, &HashHeader{}, &Node{}, &Slot{},
		&RingHeader{}, &Record{}, &Control{}, &ProcData{}, &ProcStat{}, &SyscallStat{}} {
		if got, want := binary.Size(v), int(reflect.TypeOf(v).Elem().Size()); got != want {
			t.Errorf("%T: encoded %d bytes, in memory %d (implicit padding)", v, got, want)
		}
	}
	// A header written through the struct in memory decodes the same.
	var h Header
	h.HeartbeatNs, h.State, h.ControlRejected, h.ProducerName[0] = 0x1122334455667788, StateRunning, 7, 'k'
	mem := unsafe.Slice((*byte)(unsafe.Pointer(&h)), HeaderSize)
	var d Header
	if err := Decode(mem, &d); err != nil || d != h {
		t.Fatalf("decode of the in-memory header: %+v, %v", d, err)
	}
	if binary.LittleEndian.Uint64(mem[HeaderHeartbeatOff:]) != h.HeartbeatNs || binary.LittleEndian.Uint32(mem[HeaderStateOff:]) != StateRunning {
		t.Fatal("offset constants disagree with the struct")
	}
	if err := Decode(mem[:HeaderSize-1], &d); !errors.Is(err, ErrShort) {
		t.Fatalf("short buffer: %v", err)
	}
	s := SyscallStat{1, 2, 3, 4, 5, 6, 7, 8}
	b := unsafe.Slice((*byte)(unsafe.Pointer(&s)), unsafe.Sizeof(s))
	if DecodeSyscallStat(b) != s || s.Words() != [8]uint64{1, 2, 3, 4, 5, 6, 7, 8} {
		t.Fatal("syscall slot codec")
	}
	pd := ProcData{PID: 42, UID: 1000, Valid: 0b101}
	copy(pd.Comm[:], "bash")
	pb := make([]byte, unsafe.Sizeof(pd))
	pd.Put(pb)
	if got, err := DecodeProcData(pb); err != nil || got != pd || !bytes.Equal(pb, unsafe.Slice((*byte)(unsafe.Pointer(&pd)), len(pb))) {
		t.Fatalf("proc data codec: %+v %v", got, err)
	}
	var c Control
	c.IntervalUs, c.Kx100, c.Warmup, c.SyscallOverrideNs[3] = 100000, 250, 32, 999
	cb := unsafe.Slice((*byte)(unsafe.Pointer(&c)), ControlSize)
	if p, err := DecodeControlParams(cb); err != nil || p != (ControlParams{100000, 250, 32}) || ControlOverride(cb, 3) != 999 || ControlOverride(cb, NumSyscallOverrides) != 0 {
		t.Fatalf("control codec: %+v %v", p, err)
	}
}
