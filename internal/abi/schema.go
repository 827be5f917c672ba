package abi

import (
	"errors"
	"fmt"
	"unsafe"
)

// This file declares the columns of every well-known section once, as
// data. Both producers build their schema from it: the daemon through
// Columns (userside/provider), the kernel module through the table that
// tools/kgen generates from it (kmod/include/generated/kushm_columns.h,
// `make generate`; `make check-generated` fails when it is stale).
// Readers never use these declarations: they decode the region's own
// schema section, which carries the same data (docs/region-format.md §4).
//
// # Adding a section
//
// A new well-known section is declared in one place, here:
//
//  1. its name as a SecName* constant and, if it has a fixed element
//     layout, its struct in abi.go (cgen emits both for C) with a codec
//     in codec.go;
//  2. a SectionDecl in Sections below, in the order the producers lay
//     sections out, with one ColumnDecl per field: name, unit, offset in
//     the element, type, kind and merge rule (how readers combine the
//     per-CPU slots of one entry; see MergeSum and the rules after it);
//  3. `make generate`, then lay the section out in both producers
//     (userside/provider Layout with Columns(name, ...), and
//     kushm_region_create in kmod/ with KUSHM_COLS_<NAME>_FIRST/_COUNT),
//     or mark it DaemonOnly while the module does not produce it.
//
// For example, a per-cgroup table keyed by cgroup id whose value is a
// counter and a gauge:
//
//	{Name: "cgroups", Kind: SecRCUHash, Columns: []ColumnDecl{
//		{Name: "cgroup_id", Unit: "raw", Type: ColU64, Kind: ColKey, Size: 8},
//		{Name: "on_cpu_ns", Unit: "ns", Offset: 0, Type: ColU64, Kind: ColCounter, Size: 8, Merge: MergeSum},
//		{Name: "nr_tasks", Unit: "count", Offset: 8, Type: ColU64, Kind: ColGauge, Size: 8, Merge: MergeMax},
//	}},
//
// TestSchemaDecls checks every declaration (fields inside the element,
// no overlaps, complete Welford groups, units a reader accepts).

// ColumnDecl declares one column of a well-known section. The fields are
// those of struct kushm_column; Each and Stride make it a template. Key,
// label and valid-mask columns are never merged and leave Merge 0; every
// other (value) column declares its rule.
type ColumnDecl struct {
	Name   string // ≤ 31 printable ASCII bytes
	Unit   string // ≤ 15 printable ASCII bytes ("count", "ns", "raw" ...)
	Offset uint32 // of the field in the element (atomicarr row, rcuhash value or node data)
	Type   uint16 // ColU64, ColS64, ColU32, ColChars, ColU16
	Kind   uint8  // ColCounter, ColGauge, ColKey, ColLabel, ColValidMask
	Merge  uint8  // Merge* rule, with the Welford group in the high bits
	Size   uint32 // bytes of the field
	ID     uint32 // catalogue id (pmu preset, msr id; the valid-mask bit), or 0

	// Each, when set, makes this declaration a template that stands for
	// one column per entry of that catalogue, in catalogue order: the
	// entry gives Name, Unit, ID (and Kind and Merge when non-zero), and
	// the column is at Offset + Stride·ID.
	Each   Catalogue
	Stride uint32
}

// SectionDecl declares the columns of one well-known section.
type SectionDecl struct {
	Name    string // a SecName* constant
	Kind    uint32 // Sec* section kind
	Columns []ColumnDecl
	// DaemonOnly: only the userspace daemon lays the section out (the
	// kernel module does not produce it, yet). The module's generated
	// column table leaves it out; the kernel test that compares the
	// producers' schemas checks that the module indeed lacks it (clear
	// the flag when the module gains the section).
	DaemonOnly bool
}

// Catalogue names a list of columns whose names live with the code that
// measures them (pmu presets, the MSR catalogue): packages above this one
// provide the entries (pmu.SchemaCatalogue, msr.SchemaCatalogue).
type Catalogue string

// The catalogues the well-known sections use.
const (
	CatPMU Catalogue = "pmu"
	CatMSR Catalogue = "msr"
)

// CatalogueEntry is one entry of a catalogue as a column: the template's
// Kind and Merge apply where these are zero.
type CatalogueEntry struct {
	ID    uint32
	Name  string
	Unit  string // normalised by ColumnUnit
	Kind  uint8
	Merge uint8
}

// Catalogues maps each catalogue to its entries.
type Catalogues map[Catalogue][]CatalogueEntry

// MergeGroup returns merge rule r of Welford group g (0..15).
func MergeGroup(r, g uint8) uint8 { return r | g<<MergeGroupShift }

// Sections is the well-known sections' schema, in the order both
// producers lay them out (sections without columns are not listed).
var Sections = []SectionDecl{
	{Name: SecNamePMU, Kind: SecAtomicArr, Columns: []ColumnDecl{
		// One per pmu preset: slot = preset id. Rows are CPUs; a
		// machine total is their sum.
		{Each: CatPMU, Offset: RowSlotsOff, Stride: 8, Type: ColU64, Kind: ColCounter, Merge: MergeSum, Size: 8},
	}},
	{Name: SecNameMSR, Kind: SecAtomicArr, Columns: []ColumnDecl{
		// One per catalogue MSR: slot = msr id. Kind and merge come
		// from the entry (thread-scoped counters sum; the rest are
		// per CPU, core or package and are not merged).
		{Each: CatMSR, Offset: RowSlotsOff, Stride: 8, Type: ColU64, Kind: ColGauge, Merge: MergeNone, Size: 8},
	}},
	{Name: SecNameCPUTime, Kind: SecAtomicArr, Columns: []ColumnDecl{
		// Per-CPU time accounting (the kernel's cpustat), ns since
		// boot: slot = CPUTime*. Rows are CPUs; a machine total is
		// their sum.
		{Name: "busy", Unit: "ns", Offset: RowSlotsOff + 8*CPUTimeBusy, Type: ColU64, Kind: ColCounter, Merge: MergeSum, Size: 8, ID: CPUTimeBusy},
		{Name: "user", Unit: "ns", Offset: RowSlotsOff + 8*CPUTimeUser, Type: ColU64, Kind: ColCounter, Merge: MergeSum, Size: 8, ID: CPUTimeUser},
		{Name: "system", Unit: "ns", Offset: RowSlotsOff + 8*CPUTimeSystem, Type: ColU64, Kind: ColCounter, Merge: MergeSum, Size: 8, ID: CPUTimeSystem},
		{Name: "idle", Unit: "ns", Offset: RowSlotsOff + 8*CPUTimeIdle, Type: ColU64, Kind: ColCounter, Merge: MergeSum, Size: 8, ID: CPUTimeIdle},
		{Name: "iowait", Unit: "ns", Offset: RowSlotsOff + 8*CPUTimeIOWait, Type: ColU64, Kind: ColCounter, Merge: MergeSum, Size: 8, ID: CPUTimeIOWait},
		{Name: "steal", Unit: "ns", Offset: RowSlotsOff + 8*CPUTimeSteal, Type: ColU64, Kind: ColCounter, Merge: MergeSum, Size: 8, ID: CPUTimeSteal},
	}},
	{Name: SecNameProcs, Kind: SecRCUHash, Columns: []ColumnDecl{
		// Key: the pid. Data: ProcData. Value: ProcStat (one slot per
		// CPU in the module, one in the daemon).
		{Name: "pid", Unit: "raw", Type: ColU64, Kind: ColKey, Size: 8},
		{Name: "comm", Unit: "raw", Offset: uint32(unsafe.Offsetof(ProcData{}.Comm)), Type: ColChars, Kind: ColLabel, Size: 16},
		{Name: "uid", Unit: "raw", Offset: uint32(unsafe.Offsetof(ProcData{}.UID)), Type: ColU32, Kind: ColLabel, Size: 4},
		{Name: "valid", Unit: "raw", Offset: uint32(unsafe.Offsetof(ProcData{}.Valid)), Type: ColU64, Kind: ColValidMask, Size: 8},
		{Each: CatPMU, Offset: 0, Stride: 8, Type: ColU64, Kind: ColCounter, Merge: MergeSum, Size: 8},
		{Name: "on_cpu_ns", Unit: "ns", Offset: 8 * ProcCounterRuntime, Type: ColU64, Kind: ColCounter, Size: 8, ID: ProcCounterRuntime, Merge: MergeSum},
	}},
	{Name: SecNameSyscalls, Kind: SecRCUHash, Columns: []ColumnDecl{
		// Key: the syscall nr. Value: SyscallStat, one slot per CPU in
		// the module: Welford group 0 (count, sum_ns, mean_ns, m2),
		// merged exactly as internal/sysstat.Merge does.
		{Name: "nr", Unit: "raw", Type: ColU64, Kind: ColKey, Size: 8},
		// count, sum_ns and m2 describe the decaying window (ABI 1.4):
		// gauges; total, decays and hist (group 1: no slot is empty for
		// them) are summed (docs/helpers.md, "Latency histograms").
		{Name: "count", Unit: "count", Offset: 0, Type: ColU64, Kind: ColGauge, Size: 8, Merge: MergeWelfordCount},
		{Name: "mean_ns", Unit: "ns", Offset: 8, Type: ColU64, Kind: ColGauge, Size: 8, Merge: MergeWelfordMean},
		{Name: "m2", Unit: "ns2", Offset: 16, Type: ColU64, Kind: ColGauge, Size: 8, Merge: MergeWelfordM2},
		{Name: "max_ns", Unit: "ns", Offset: 24, Type: ColU64, Kind: ColGauge, Size: 8, Merge: MergeMax},
		{Name: "min_ns", Unit: "ns", Offset: 32, Type: ColU64, Kind: ColGauge, Size: 8, Merge: MergeMin},
		{Name: "sum_ns", Unit: "ns", Offset: 40, Type: ColU64, Kind: ColGauge, Size: 8, Merge: MergeWelfordSum},
		{Name: "outliers", Unit: "count", Offset: 48, Type: ColU64, Kind: ColCounter, Size: 8, Merge: MergeSum},
		{Name: "last_ns", Unit: "ns", Offset: 56, Type: ColU64, Kind: ColGauge, Size: 8, Merge: MergeLast},
		{Name: "total", Unit: "count", Offset: SyscallTotalOff, Type: ColU64, Kind: ColCounter, Size: 8, Merge: MergeSum | 1<<MergeGroupShift},
		{Name: "decays", Unit: "count", Offset: SyscallDecaysOff, Type: ColU64, Kind: ColCounter, Size: 8, Merge: MergeSum | 1<<MergeGroupShift},
		// The latency histogram: SyscallHistBuckets u16 counts, bucket b
		// = Prometheus native-histogram index b-1+HistMinIndex of schema
		// HistSchema in seconds (0: 0 ns; the last: above 107.6 s).
		{Name: "hist", Unit: "count", Offset: SyscallBucketsOff, Type: ColU16, Kind: ColGauge, Size: 2 * SyscallHistBuckets, Merge: MergeSum | 1<<MergeGroupShift},
	}},
	{Name: SecNamePMUMux, Kind: SecAtomicArr, Columns: pmuMuxColumns()},
	{Name: SecNameProcsMux, Kind: SecRCUHash, DaemonOnly: true, Columns: procsMuxColumns()},
	{Name: SecNameCgroups, Kind: SecRCUHash, Columns: []ColumnDecl{
		// Key: the cgroup v2 id (CgroupKeyIdle, CgroupKeyOverflow are
		// the rows that are not cgroups). Data: CgroupData. Value:
		// CgroupStat, one slot per CPU. A reader sums the slots, then
		// scales a counter of event group g by enabled[g]/running[g].
		{Name: "cgroup_id", Unit: "raw", Type: ColU64, Kind: ColKey, Size: 8},
		{Name: "valid", Unit: "raw", Offset: uint32(unsafe.Offsetof(CgroupData{}.Valid)), Type: ColU64, Kind: ColValidMask, Size: 8},
		{Name: "groups", Unit: "raw", Offset: uint32(unsafe.Offsetof(CgroupData{}.Groups)), Type: ColU64, Kind: ColLabel, Size: 8},
		{Each: CatPMU, Offset: 0, Stride: 8, Type: ColU64, Kind: ColCounter, Merge: MergeSum, Size: 8},
		{Name: "on_cpu_ns", Unit: "ns", Offset: 8 * ProcCounterRuntime, Type: ColU64, Kind: ColCounter, Size: 8, ID: ProcCounterRuntime, Merge: MergeSum},
		{Name: "group0_enabled_ns", Unit: "ns", Offset: uint32(unsafe.Offsetof(CgroupStat{}.Enabled)), Type: ColU64, Kind: ColCounter, Size: 8, Merge: MergeSum},
		{Name: "group1_enabled_ns", Unit: "ns", Offset: uint32(unsafe.Offsetof(CgroupStat{}.Enabled)) + 8, Type: ColU64, Kind: ColCounter, Size: 8, Merge: MergeSum},
		{Name: "group2_enabled_ns", Unit: "ns", Offset: uint32(unsafe.Offsetof(CgroupStat{}.Enabled)) + 16, Type: ColU64, Kind: ColCounter, Size: 8, Merge: MergeSum},
		{Name: "group3_enabled_ns", Unit: "ns", Offset: uint32(unsafe.Offsetof(CgroupStat{}.Enabled)) + 24, Type: ColU64, Kind: ColCounter, Size: 8, Merge: MergeSum},
		{Name: "group0_running_ns", Unit: "ns", Offset: uint32(unsafe.Offsetof(CgroupStat{}.Running)), Type: ColU64, Kind: ColCounter, Size: 8, Merge: MergeSum},
		{Name: "group1_running_ns", Unit: "ns", Offset: uint32(unsafe.Offsetof(CgroupStat{}.Running)) + 8, Type: ColU64, Kind: ColCounter, Size: 8, Merge: MergeSum},
		{Name: "group2_running_ns", Unit: "ns", Offset: uint32(unsafe.Offsetof(CgroupStat{}.Running)) + 16, Type: ColU64, Kind: ColCounter, Size: 8, Merge: MergeSum},
		{Name: "group3_running_ns", Unit: "ns", Offset: uint32(unsafe.Offsetof(CgroupStat{}.Running)) + 24, Type: ColU64, Kind: ColCounter, Size: 8, Merge: MergeSum},
	}},
}

// pmuMuxColumns: group g's enabled and running ns (summed over CPUs for
// a machine total), then the group map (per CPU, not merged).
func pmuMuxColumns() []ColumnDecl {
	var cols []ColumnDecl
	for g := uint32(0); g < PMUMuxGroups; g++ {
		for k, what := range []string{"enabled", "running"} {
			slot := 2*g + uint32(k)
			cols = append(cols, ColumnDecl{Name: fmt.Sprintf("group%d_%s_ns", g, what), Unit: "ns", Offset: RowSlotsOff + 8*slot,
				Type: ColU64, Kind: ColCounter, Merge: MergeSum, Size: 8, ID: slot})
		}
	}
	return append(cols, ColumnDecl{Name: "group_map", Unit: "raw", Offset: RowSlotsOff + 8*PMUMuxMap, Type: ColU64, Kind: ColGauge, Merge: MergeNone, Size: 8, ID: PMUMuxMap})
}

// procsMuxColumns: the pid, the group map, then per group the ns enabled
// and running (one slot: the daemon's per-process counters).
func procsMuxColumns() []ColumnDecl {
	cols := []ColumnDecl{
		{Name: "pid", Unit: "raw", Type: ColU64, Kind: ColKey, Size: 8},
		{Name: "groups", Unit: "raw", Offset: uint32(unsafe.Offsetof(ProcMuxData{}.Groups)), Type: ColU64, Kind: ColLabel, Size: 8},
	}
	for g := uint32(0); g < CgroupGroups; g++ {
		cols = append(cols,
			ColumnDecl{Name: fmt.Sprintf("group%d_enabled_ns", g), Unit: "ns", Offset: uint32(unsafe.Offsetof(ProcMux{}.Enabled)) + 8*g, Type: ColU64, Kind: ColCounter, Merge: MergeSum, Size: 8},
			ColumnDecl{Name: fmt.Sprintf("group%d_running_ns", g), Unit: "ns", Offset: uint32(unsafe.Offsetof(ProcMux{}.Running)) + 8*g, Type: ColU64, Kind: ColCounter, Merge: MergeSum, Size: 8})
	}
	return cols
}

// ErrSchema is returned for a malformed declaration or a missing
// catalogue.
var ErrSchema = errors.New("bad schema declaration")

// Declared returns the declaration of the well-known section name.
func Declared(name string) (SectionDecl, bool) {
	for _, s := range Sections {
		if s.Name == name {
			return s, true
		}
	}
	return SectionDecl{}, false
}

// Columns returns the columns of the well-known section name, templates
// expanded from cat: exactly the schema entries a producer writes.
func Columns(name string, cat Catalogues) ([]ColumnDecl, error) {
	s, ok := Declared(name)
	if !ok {
		return nil, fmt.Errorf("section %q: not a well-known section: %w", name, ErrSchema)
	}
	return s.Expand(cat)
}

// Expand returns the section's columns with templates expanded from cat.
func (s SectionDecl) Expand(cat Catalogues) ([]ColumnDecl, error) {
	var out []ColumnDecl
	for _, c := range s.Columns {
		if c.Each == "" {
			out = append(out, c)
			continue
		}
		ents, ok := cat[c.Each]
		if !ok {
			return nil, fmt.Errorf("section %q: catalogue %q not given: %w", s.Name, c.Each, ErrSchema)
		}
		for _, e := range ents {
			x := c
			x.Each, x.Stride = "", 0
			x.Name, x.Unit, x.ID = e.Name, ColumnUnit(e.Unit), e.ID
			x.Offset = c.Offset + c.Stride*e.ID
			if e.Kind != 0 {
				x.Kind = e.Kind
			}
			if e.Merge != 0 {
				x.Merge = e.Merge
			}
			out = append(out, x)
		}
	}
	return out, nil
}

// ColumnUnit makes a catalogue unit fit a schema column: printable ASCII
// shorter than ColumnUnitLen; "°C" is spelled "celsius", anything else
// that does not fit is "raw".
func ColumnUnit(u string) string {
	if u == "°C" {
		return "celsius"
	}
	if len(u) >= ColumnUnitLen {
		return "raw"
	}
	for i := 0; i < len(u); i++ {
		if u[i] < 0x20 || u[i] > 0x7e {
			return "raw"
		}
	}
	return u
}
