package shm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/kushm/kushm/internal/abi"
)

var le = binary.LittleEndian

// Header is a decoded copy of the region header. Fields that change while
// the producer runs (heartbeat, state, pid, generation) are read again by
// Region.Producer.
type Header struct {
	ABIMajor, ABIMinor uint16
	HeaderSize         uint32
	RegionSize         uint64
	PageSize           uint32
	NCPUs              uint32
	ProducerKind       uint32
	ProducerPID        uint32
	CreatedRealNs      uint64
	HeartbeatNs        uint64
	HeartbeatPeriodNs  uint64
	State              uint32
	Generation         uint64
	ProducerName       string
	SectionCount       uint32
	// ControlRejected: control values the producer refused (ABI 1.2;
	// 0 in older regions).
	ControlRejected uint64
	// ProducerPIDNS: the inode of the producer's pid namespace (ABI 1.6;
	// 0 unknown): its pid means something only there.
	ProducerPIDNS uint64
}

// Section is a validated entry of the section table.
type Section struct {
	Index    int
	Name     string
	Kind     uint32
	Flags    uint32
	Offset   uint64
	Size     uint64
	ElemSize uint32
	Count    uint32
	ColFirst uint32
	ColCount uint32
	Aux0     uint32
	Aux1     uint32
	// Columns describe one element of the section (from the schema).
	Columns []Column
	// Missing: an external section whose companion file this process
	// could not open (absent, or no permission); its bytes are not
	// available. MissingReason says why when the reader knows.
	Missing       bool
	MissingReason string
}

// same reports whether o is s (the table fields; not the decoded columns).
func (s *Section) same(o *Section) bool {
	return s.Index == o.Index && s.Name == o.Name && s.Kind == o.Kind && s.Flags == o.Flags &&
		s.Offset == o.Offset && s.Size == o.Size && s.Missing == o.Missing
}

// External reports whether the section lives in the companion file.
func (s *Section) External() bool { return s.Flags&abi.SecFlagExternal != 0 }

// Column is a decoded schema entry.
type Column struct {
	Name   string
	Unit   string
	Offset uint32
	Type   uint16
	Kind   uint8
	Merge  uint8 // abi.Merge* rule | group<<abi.MergeGroupShift; 0 in a 1.1 region
	Size   uint32
	ID     uint32
}

// KindName names a section kind for messages and dumps.
func KindName(k uint32) string {
	switch k {
	case abi.SecSchema:
		return "schema"
	case abi.SecAtomicArr:
		return "atomicarr"
	case abi.SecRCUHash:
		return "rcuhash"
	case abi.SecControl:
		return "control"
	case abi.SecRing:
		return "ring"
	case abi.SecText:
		return "text"
	}
	return fmt.Sprintf("kind(%d)", k)
}

func cstr(b []byte) (string, bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		i = len(b)
	}
	// Everything after the first NUL must be NUL: names are NUL padded.
	for _, c := range b[i:] {
		if c != 0 {
			return "", false
		}
	}
	for _, c := range b[:i] {
		if c < 0x20 || c > 0x7e {
			return "", false
		}
	}
	return string(b[:i]), true
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrCorrupt)
}

// ParseHeader decodes and validates the header in mem, the first bytes of
// a mapping of mapSize bytes. It never reads outside mem.
func ParseHeader(mem []byte, mapSize uint64) (Header, error) {
	var h Header
	if len(mem) < abi.HeaderSize {
		return h, fmt.Errorf("header needs %d bytes, have %d: %w", abi.HeaderSize, len(mem), ErrTruncated)
	}
	var raw abi.Header
	if err := abi.Decode(mem, &raw); err != nil {
		return h, fmt.Errorf("header: %v: %w", err, ErrTruncated)
	}
	if raw.Magic != abi.Magic {
		return h, fmt.Errorf("magic %#x: %w", raw.Magic, ErrBadMagic)
	}
	h.ABIMajor, h.ABIMinor = raw.ABIMajor, raw.ABIMinor
	if h.ABIMajor != abi.ABIMajor {
		return h, fmt.Errorf("region ABI %d.%d, this reader knows %d.x: %w", h.ABIMajor, h.ABIMinor, abi.ABIMajor, ErrABIMismatch)
	}
	h.HeaderSize = raw.HeaderSize
	h.RegionSize = raw.RegionSize
	h.PageSize = raw.PageSize
	h.NCPUs = raw.NCPUs
	h.ProducerKind = raw.ProducerKind
	h.ProducerPID = raw.ProducerPID
	h.CreatedRealNs = raw.CreatedRealNs
	h.HeartbeatNs = raw.HeartbeatNs
	h.HeartbeatPeriodNs = raw.HeartbeatPeriodNs
	h.State = raw.State
	h.Generation = raw.Generation
	name, ok := cstr(raw.ProducerName[:])
	if !ok {
		name = "?"
	}
	h.ProducerName = name
	h.SectionCount = raw.SectionCount
	h.ControlRejected = raw.ControlRejected
	h.ProducerPIDNS = raw.ProducerPIDNS

	switch {
	case h.HeaderSize != abi.HeaderAreaSize:
		return h, corrupt("header_size %d, want %d", h.HeaderSize, abi.HeaderAreaSize)
	case h.PageSize < 4096 || h.PageSize > 1<<20 || bits.OnesCount32(h.PageSize) != 1:
		return h, corrupt("page_size %d", h.PageSize)
	case h.RegionSize < abi.HeaderAreaSize || h.RegionSize%uint64(h.PageSize) != 0:
		return h, corrupt("region_size %d", h.RegionSize)
	case h.RegionSize > mapSize:
		return h, fmt.Errorf("header says %d bytes, mapping has %d: %w", h.RegionSize, mapSize, ErrTruncated)
	case h.NCPUs == 0 || h.NCPUs > abi.MaxCPUs:
		return h, corrupt("ncpus %d", h.NCPUs)
	case h.SectionCount > abi.MaxSections:
		return h, corrupt("section_count %d > %d", h.SectionCount, abi.MaxSections)
	case raw.SectionTableOff != abi.SectionTableOff:
		return h, corrupt("section_table_off %d", raw.SectionTableOff)
	case raw.SectionEntrySize != abi.SectionEntrySize:
		return h, corrupt("section_entry_size %d", raw.SectionEntrySize)
	case raw.ColumnEntrySize != abi.ColumnEntrySize:
		return h, corrupt("column_entry_size %d", raw.ColumnEntrySize)
	}
	return h, nil
}

// ParseSections decodes and validates the section table and the schema.
// mem is the whole region mapping (len(mem) ≥ h.RegionSize); ctlSize is
// the size of the companion file (0 if none). It never reads outside mem.
func ParseSections(mem []byte, h Header, ctlSize uint64) ([]Section, error) {
	if uint64(len(mem)) < h.RegionSize || len(mem) < abi.HeaderAreaSize {
		return nil, fmt.Errorf("mapping %d bytes < region %d: %w", len(mem), h.RegionSize, ErrTruncated)
	}
	secs := make([]Section, 0, h.SectionCount)
	page := uint64(h.PageSize)
	for i := uint32(0); i < h.SectionCount; i++ {
		var e abi.Section
		if err := abi.Decode(mem[abi.SectionTableOff+i*abi.SectionEntrySize:], &e); err != nil {
			return nil, corrupt("section %d: %v", i, err)
		}
		name, ok := cstr(e.Name[:])
		if !ok || name == "" {
			return nil, corrupt("section %d: bad name", i)
		}
		s := Section{
			Index: int(i), Name: name,
			Kind: e.Kind, Flags: e.Flags,
			Offset: e.Offset, Size: e.Size,
			ElemSize: e.ElemSize, Count: e.Count,
			ColFirst: e.ColFirst, ColCount: e.ColCount,
			Aux0: e.Aux0, Aux1: e.Aux1,
		}
		limit := h.RegionSize
		if s.External() {
			limit = ctlSize
			if ctlSize == 0 {
				// The companion file is absent or unreadable to us:
				// the section is listed but not available.
				s.Missing = true
				limit = ^uint64(0)
			}
		}
		end, carry := bits.Add64(s.Offset, s.Size, 0)
		// A kind this reader does not know (from a newer minor) stays
		// listed with opaque contents; its bounds are checked all the same.
		switch {
		case s.Flags&^uint64AsU32(abi.SecFlagProducer|abi.SecFlagUserWritable|abi.SecFlagExternal) != 0:
			return nil, corrupt("section %q: unknown flags %#x", name, s.Flags)
		case s.Size == 0 || s.Size%page != 0:
			return nil, corrupt("section %q: size %d not a page multiple", name, s.Size)
		case s.Offset%page != 0:
			return nil, corrupt("section %q: offset %#x not page aligned", name, s.Offset)
		case !s.External() && s.Offset < abi.HeaderAreaSize:
			return nil, corrupt("section %q: offset %#x inside the header page", name, s.Offset)
		case carry != 0 || end > limit:
			return nil, fmt.Errorf("section %q: [%#x, +%#x) beyond %d bytes: %w", name, s.Offset, s.Size, limit, ErrTruncated)
		case uint64(s.ElemSize)*uint64(s.Count) > s.Size:
			return nil, corrupt("section %q: %d elements of %d bytes exceed %d", name, s.Count, s.ElemSize, s.Size)
		}
		for j := range secs {
			o := &secs[j]
			if o.Name == s.Name {
				return nil, corrupt("section %q: duplicate name", name)
			}
			if o.External() == s.External() && s.Offset < o.Offset+o.Size && o.Offset < end {
				return nil, corrupt("sections %q and %q overlap", o.Name, name)
			}
		}
		secs = append(secs, s)
	}
	// At most one control section: a region has one control mapping.
	nctl := 0
	for i := range secs {
		if secs[i].Kind == abi.SecControl {
			if nctl++; nctl > 1 {
				return nil, corrupt("section %q: a second control section", secs[i].Name)
			}
		}
	}
	// Schema: exactly one, then attach columns.
	var schema *Section
	for i := range secs {
		if secs[i].Kind == abi.SecSchema {
			if schema != nil {
				return nil, corrupt("two schema sections")
			}
			schema = &secs[i]
		}
	}
	if schema != nil {
		if schema.External() || schema.ElemSize != abi.ColumnEntrySize || schema.Count > abi.MaxColumns {
			return nil, corrupt("schema section geometry (elem %d, count %d)", schema.ElemSize, schema.Count)
		}
	}
	for i := range secs {
		s := &secs[i]
		if s.ColCount == 0 {
			continue
		}
		if schema == nil {
			return nil, corrupt("section %q has columns but there is no schema", s.Name)
		}
		end := uint64(s.ColFirst) + uint64(s.ColCount)
		if end > uint64(schema.Count) {
			return nil, corrupt("section %q: columns [%d, %d) beyond the schema's %d", s.Name, s.ColFirst, end, schema.Count)
		}
		s.Columns = make([]Column, 0, s.ColCount)
		for c := uint64(s.ColFirst); c < end; c++ {
			var e abi.Column
			if err := abi.Decode(mem[schema.Offset+c*abi.ColumnEntrySize:], &e); err != nil {
				return nil, corrupt("section %q: column %d: %v", s.Name, c, err)
			}
			name, ok1 := cstr(e.Name[:])
			unit, ok2 := cstr(e.Unit[:])
			col := Column{Name: name, Unit: unit, Offset: e.Offset, Type: e.Type,
				Kind: e.Kind, Merge: e.Merge, Size: e.Size, ID: e.ID}
			if !ok1 || !ok2 || name == "" {
				return nil, corrupt("section %q: column %d: bad name or unit", s.Name, c)
			}
			if col.Type < abi.ColU64 || col.Type > abi.ColU16 || col.Size == 0 || col.Size > abi.MaxValueSize ||
				(col.Type == abi.ColU16 && col.Size%2 != 0) {
				return nil, corrupt("section %q: column %q: type %d size %d", s.Name, name, col.Type, col.Size)
			}
			s.Columns = append(s.Columns, col)
		}
	}
	return secs, nil
}

func uint64AsU32(v int) uint32 { return uint32(v) }
