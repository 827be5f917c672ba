package abi_test

import (
	"fmt"
	"testing"
	"unsafe"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/msr"
	"github.com/kushm/kushm/pmu"
)

var cat = abi.Catalogues{abi.CatPMU: pmu.SchemaCatalogue(), abi.CatMSR: msr.SchemaCatalogue()}

// elemSizes are the bytes of each well-known section's element parts: the
// value (atomicarr: the row) and the node data.
var elemSizes = map[string]struct{ value, data uint32 }{
	abi.SecNamePMU:      {uint32(abi.RowSlotsOff + 8*pmu.NumPresets), 0},
	abi.SecNameMSR:      {uint32(abi.RowSlotsOff + 8*msr.NumMSRs), 0},
	abi.SecNameCPUTime:  {uint32(abi.RowSlotsOff + 8*abi.NumCPUTime), 0},
	abi.SecNameProcs:    {uint32(unsafe.Sizeof(abi.ProcStat{})), uint32(unsafe.Sizeof(abi.ProcData{}))},
	abi.SecNameSyscalls: {abi.SyscallSlotSize, 0},
	abi.SecNameProcsMux: {uint32(unsafe.Sizeof(abi.ProcMux{})), uint32(unsafe.Sizeof(abi.ProcMuxData{}))},
	abi.SecNamePMUMux:   {uint32(abi.RowSlotsOff + 8*abi.NumPMUMux), 0},
	abi.SecNameCgroups:  {uint32(unsafe.Sizeof(abi.CgroupStat{})), uint32(unsafe.Sizeof(abi.CgroupData{}))},
}

// CheckColumns is what TestSchemaDecls asserts of one section's expanded
// columns; it returns the first problem.
func checkColumns(name string, cols []abi.ColumnDecl) error {
	sz, ok := elemSizes[name]
	if !ok {
		return fmt.Errorf("section %q: no element size known to the test (add it to elemSizes)", name)
	}
	type span struct {
		lo, hi uint32
		name   string
	}
	var value, data []span
	names := map[string]bool{}
	roles := map[uint8]map[uint8]int{} // group -> Welford role -> columns
	for _, c := range cols {
		if c.Name == "" || len(c.Name) >= abi.ColumnNameLen || names[c.Name] {
			return fmt.Errorf("column %q: empty, too long or duplicate name", c.Name)
		}
		names[c.Name] = true
		if abi.ColumnUnit(c.Unit) != c.Unit {
			return fmt.Errorf("column %q: unit %q is not one a reader accepts", c.Name, c.Unit)
		}
		switch {
		case c.Type < abi.ColU64 || c.Type > abi.ColU16,
			c.Kind < abi.ColCounter || c.Kind > abi.ColValidMask,
			c.Merge&abi.MergeRuleMask > abi.MergeWelfordM2:
			return fmt.Errorf("column %q: type %d kind %d merge %#x", c.Name, c.Type, c.Kind, c.Merge)
		case c.Merge == abi.MergeUnspecified && c.Kind != abi.ColKey && c.Kind != abi.ColLabel && c.Kind != abi.ColValidMask:
			return fmt.Errorf("value column %q: no merge rule (a 1.2 producer declares one for every value column)", c.Name)
		case (c.Type == abi.ColU32) != (c.Size == 4), c.Type == abi.ColU16 && (c.Size%2 != 0 || c.Merge&abi.MergeRuleMask != abi.MergeSum),
			c.Type != abi.ColChars && c.Type != abi.ColU32 && c.Type != abi.ColU16 && c.Size != 8:
			return fmt.Errorf("column %q: type %d of %d bytes", c.Name, c.Type, c.Size)
		}
		s := span{c.Offset, c.Offset + c.Size, c.Name}
		switch c.Kind {
		case abi.ColKey:
			if c.Offset != 0 || c.Size != 8 || c.Merge != abi.MergeUnspecified {
				return fmt.Errorf("key column %q: offset %d size %d merge %d", c.Name, c.Offset, c.Size, c.Merge)
			}
			continue
		case abi.ColLabel, abi.ColValidMask:
			if c.Merge != abi.MergeUnspecified {
				// 0, so that a 1.1 reader (u16 kind) still knows it.
				return fmt.Errorf("node-data column %q: merge %d, want 0", c.Name, c.Merge)
			}
			if s.hi > sz.data {
				return fmt.Errorf("column %q: [%d, %d) beyond the %d bytes of node data", c.Name, s.lo, s.hi, sz.data)
			}
			data = append(data, s)
		default:
			if s.hi > sz.value {
				return fmt.Errorf("column %q: [%d, %d) beyond the %d-byte element", c.Name, s.lo, s.hi, sz.value)
			}
			if r := c.Merge & abi.MergeRuleMask; r >= abi.MergeWelfordCount {
				if c.Type != abi.ColU64 {
					return fmt.Errorf("Welford column %q is not u64", c.Name)
				}
				g := c.Merge >> abi.MergeGroupShift
				if roles[g] == nil {
					roles[g] = map[uint8]int{}
				}
				roles[g][r]++
			}
			value = append(value, s)
		}
	}
	for _, part := range [][]span{value, data} {
		for i, a := range part {
			for _, b := range part[i+1:] {
				if a.lo < b.hi && b.lo < a.hi {
					return fmt.Errorf("columns %q and %q overlap", a.name, b.name)
				}
			}
		}
	}
	for g, rs := range roles {
		for r := uint8(abi.MergeWelfordCount); r <= abi.MergeWelfordM2; r++ {
			if rs[r] != 1 {
				return fmt.Errorf("Welford group %d: %d columns of role %d, want exactly 1", g, rs[r], r)
			}
		}
	}
	return nil
}

// TestSchemaDecls checks every well-known section's declaration: each
// column inside the element, no two overlapping, a merge rule on every
// column, complete Welford groups, units a reader accepts.
func TestSchemaDecls(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range abi.Sections {
		if seen[s.Name] {
			t.Errorf("section %q declared twice", s.Name)
		}
		seen[s.Name] = true
		cols, err := s.Expand(cat)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkColumns(s.Name, cols); err != nil {
			t.Errorf("section %q: %v", s.Name, err)
		}
	}
	for _, name := range []string{abi.SecNamePMU, abi.SecNameMSR, abi.SecNameProcs, abi.SecNameSyscalls} {
		if !seen[name] {
			t.Errorf("well-known section %q has no declaration", name)
		}
	}
}

// The check itself catches what it claims to (each case must fail).
func TestSchemaDeclsCheckFails(t *testing.T) {
	good, err := abi.Columns(abi.SecNameSyscalls, cat)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkColumns(abi.SecNameSyscalls, good); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(c []abi.ColumnDecl){
		"outside":        func(c []abi.ColumnDecl) { c[8].Offset = abi.SyscallSlotSize },
		"odd u16 array":  func(c []abi.ColumnDecl) { c[11].Size = 591 },
		"overlap":        func(c []abi.ColumnDecl) { c[3].Offset = 8 },
		"no merge":       func(c []abi.ColumnDecl) { c[4].Merge = 0 },
		"merged key":     func(c []abi.ColumnDecl) { c[0].Merge = abi.MergeNone },
		"welford gap":    func(c []abi.ColumnDecl) { c[3].Merge = abi.MergeSum },
		"two means":      func(c []abi.ColumnDecl) { c[4].Merge = abi.MergeWelfordMean },
		"bad unit":       func(c []abi.ColumnDecl) { c[1].Unit = "°C" },
		"duplicate name": func(c []abi.ColumnDecl) { c[2].Name = "count" },
	} {
		c := append([]abi.ColumnDecl(nil), good...)
		mutate(c)
		if checkColumns(abi.SecNameSyscalls, c) == nil {
			t.Errorf("%s: not caught", name)
		}
	}
}

func TestColumnsExpand(t *testing.T) {
	cols, err := abi.Columns(abi.SecNameProcs, cat)
	if err != nil {
		t.Fatal(err)
	}
	if len(cols) != 4+pmu.NumPresets+1 {
		t.Fatalf("%d procs columns", len(cols))
	}
	c := cols[4+int(pmu.SW_PAGE_FAULTS)]
	if c.Name != "SW_PAGE_FAULTS" || c.Offset != 8*uint32(pmu.SW_PAGE_FAULTS) || c.ID != uint32(pmu.SW_PAGE_FAULTS) || c.Each != "" {
		t.Fatalf("expanded column %+v", c)
	}
	if last := cols[len(cols)-1]; last.Name != "on_cpu_ns" || last.ID != abi.ProcCounterRuntime {
		t.Fatalf("last procs column %+v", last)
	}
	m, _ := abi.Columns(abi.SecNameMSR, cat)
	for _, c := range m {
		if c.Unit == "°C" {
			t.Fatalf("unit not normalised: %+v", c)
		}
	}
	if _, err := abi.Columns(abi.SecNameProcs, nil); err == nil {
		t.Fatal("expanded without the catalogue")
	}
	if _, err := abi.Columns("nonesuch", cat); err == nil {
		t.Fatal("unknown section")
	}
}
