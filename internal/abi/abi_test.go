package abi

import (
	"os"
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
		"KUSHM_STATIC_ASSERT(sizeof(struct kushm_control) == 4160",
		"static inline __u64 kushm_hash(__u64 key)",
	} {
		if !strings.Contains(string(h), want) {
			t.Errorf("generated header lacks %q (run go generate ./internal/abi)", want)
		}
	}
}
