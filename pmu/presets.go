package pmu

import "fmt"

// PresetID identifies a preset. IDs are ABI: they are the column index in
// the region's per-CPU "pmu" section and the preset argument of the BPF
// helper bpf_kushm_read_counter. Never reorder; append only.
type PresetID uint32

// Preset IDs, in ABI order.
const (
	PAPI_TOT_CYC PresetID = iota
	PAPI_TOT_INS
	PAPI_REF_CYC
	PAPI_L1_DCM
	PAPI_L2_TCM
	PAPI_L3_TCA
	PAPI_L3_TCM
	PAPI_BR_INS
	PAPI_BR_MSP
	PAPI_TLB_DM
	PAPI_TLB_IM
	SW_TASK_CLOCK
	SW_PAGE_FAULTS
	SW_CONTEXT_SWITCHES
	SW_CPU_MIGRATIONS

	// NumPresets is the number of presets (and of columns in the region's
	// "pmu" section).
	NumPresets = 15
)

// Preset describes one measurable quantity independent of the CPU.
type Preset struct {
	ID PresetID
	// Name is the PAPI-style name, e.g. "PAPI_TOT_CYC".
	Name string
	// Column is a short lower-case name usable as a column name (≤ 31 bytes).
	Column string
	// Unit of the counted value: "cycles", "instructions", "events", "ns".
	Unit string
	// Description says what the preset means, vendor-independently.
	Description string
	// Software is true for kernel software events, which work without a
	// hardware PMU (in VMs too).
	Software bool
}

var presets = [NumPresets]Preset{
	{PAPI_TOT_CYC, "PAPI_TOT_CYC", "tot_cyc", "cycles", "total core cycles (unhalted, at the actual clock)", false},
	{PAPI_TOT_INS, "PAPI_TOT_INS", "tot_ins", "instructions", "instructions retired", false},
	{PAPI_REF_CYC, "PAPI_REF_CYC", "ref_cyc", "cycles", "reference cycles (unhalted, at a constant reference clock)", false},
	{PAPI_L1_DCM, "PAPI_L1_DCM", "l1_dcm", "events", "level 1 data cache misses", false},
	{PAPI_L2_TCM, "PAPI_L2_TCM", "l2_tcm", "events", "level 2 total (data + instruction) cache misses", false},
	{PAPI_L3_TCA, "PAPI_L3_TCA", "l3_tca", "events", "level 3 total cache accesses", false},
	{PAPI_L3_TCM, "PAPI_L3_TCM", "l3_tcm", "events", "level 3 total cache misses", false},
	{PAPI_BR_INS, "PAPI_BR_INS", "br_ins", "instructions", "branch instructions retired", false},
	{PAPI_BR_MSP, "PAPI_BR_MSP", "br_msp", "instructions", "mispredicted branch instructions retired", false},
	{PAPI_TLB_DM, "PAPI_TLB_DM", "tlb_dm", "events", "data TLB misses", false},
	{PAPI_TLB_IM, "PAPI_TLB_IM", "tlb_im", "events", "instruction TLB misses", false},
	{SW_TASK_CLOCK, "SW_TASK_CLOCK", "task_clock", "ns", "task clock: time the target was on a CPU (software event task-clock)", true},
	{SW_PAGE_FAULTS, "SW_PAGE_FAULTS", "page_faults", "events", "page faults, minor and major (software event page-faults)", true},
	{SW_CONTEXT_SWITCHES, "SW_CONTEXT_SWITCHES", "context_switches", "events", "context switches (software event context-switches)", true},
	{SW_CPU_MIGRATIONS, "SW_CPU_MIGRATIONS", "cpu_migrations", "events", "migrations of the target between CPUs (software event cpu-migrations)", true},
}

// Presets returns all presets in ID order. The slice is a copy.
func Presets() []Preset {
	out := make([]Preset, NumPresets)
	copy(out, presets[:])
	return out
}

// Preset returns the preset p; ok is false when p is out of range.
func (p PresetID) Preset() (Preset, bool) {
	if p >= NumPresets {
		return Preset{}, false
	}
	return presets[p], true
}

func (p PresetID) String() string {
	if p >= NumPresets {
		return fmt.Sprintf("PresetID(%d)", uint32(p))
	}
	return presets[p].Name
}

// PresetByName looks a preset up by Name or Column.
func PresetByName(name string) (PresetID, bool) {
	for _, p := range presets {
		if p.Name == name || p.Column == name {
			return p.ID, true
		}
	}
	return 0, false
}

// Vendor is a CPU vendor as far as PMU event encodings go. Values are ABI
// (they index the per-vendor table in kushm_pmu.h).
type Vendor uint32

// Vendors.
const (
	VendorGeneric Vendor = iota // unknown vendor: generic perf events only
	VendorIntel
	VendorAMD

	NumVendors = 3
)

func (v Vendor) String() string {
	switch v {
	case VendorIntel:
		return "intel"
	case VendorAMD:
		return "amd"
	case VendorGeneric:
		return "generic"
	}
	return fmt.Sprintf("Vendor(%d)", uint32(v))
}

// MarshalText encodes the vendor by name.
func (v Vendor) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText decodes a vendor name.
func (v *Vendor) UnmarshalText(b []byte) error {
	for c := Vendor(0); c < NumVendors; c++ {
		if c.String() == string(b) {
			*v = c
			return nil
		}
	}
	return fmt.Errorf("unknown vendor %q", b)
}

// Perf event types used in mappings (include/uapi/linux/perf_event.h).
const (
	TypeHardware uint32 = 0
	TypeSoftware uint32 = 1
	TypeHWCache  uint32 = 3
	TypeRaw      uint32 = 4
	// TypeDynamic marks an event on a PMU whose type number is assigned at
	// boot (an uncore PMU): resolve it from
	// /sys/bus/event_source/devices/<PMU>/type.
	TypeDynamic uint32 = 0xffffffff
)

// Generic hardware event configs (PERF_COUNT_HW_*).
const (
	hwCPUCycles       = 0
	hwInstructions    = 1
	hwCacheReferences = 2
	hwCacheMisses     = 3
	hwBranchInstr     = 4
	hwBranchMisses    = 5
	hwRefCPUCycles    = 9
)

// Software event configs (PERF_COUNT_SW_*).
const (
	swTaskClock       = 1
	swPageFaults      = 2
	swContextSwitches = 3
	swCPUMigrations   = 4
)

// hwCache builds a PERF_TYPE_HW_CACHE config: id | op<<8 | result<<16.
func hwCache(id, op, result uint64) uint64 { return id | op<<8 | result<<16 }

const (
	cacheL1D  = 0
	cacheLL   = 2
	cacheDTLB = 3
	cacheITLB = 4

	cacheOpRead     = 0
	cacheResultMiss = 1
)

// Event is one perf event encoding.
type Event struct {
	// Type is the perf_event_attr.type, or TypeDynamic with PMU set.
	Type uint32
	// Config is perf_event_attr.config.
	Config uint64
	// PMU names the sysfs PMU (/sys/bus/event_source/devices/<PMU>) the
	// event needs: "cpu" for core events on x86 (generic hardware events
	// need some core PMU; see CorePMUs), "software" for software events,
	// or an uncore PMU such as "amd_l3".
	PMU string
}

// Flags qualify a Mapping.
type Flags uint32

const (
	// FlagUnavailable: the vendor has no event for the preset at all.
	FlagUnavailable Flags = 1 << iota
	// FlagUncore: the event is on an uncore PMU. It counts for all CPUs
	// sharing the unit (an L3 complex, a socket) and can only be opened
	// per CPU (pid == -1), never per process or cgroup.
	FlagUncore
	// FlagGeneric: a generic PERF_TYPE_HARDWARE/HW_CACHE event whose
	// meaning is the kernel's per-model choice.
	FlagGeneric
	// FlagApprox: the event approximates the preset (see Counts).
	FlagApprox
)

// Mapping is how one preset is counted on one vendor's CPUs.
type Mapping struct {
	Preset PresetID
	Vendor Vendor
	Event  Event
	Flags  Flags
	// Counts says what the event actually counts on this vendor's CPUs,
	// including the traps.
	Counts string
}

// Available reports whether the vendor has any event for the preset.
func (m Mapping) Available() bool { return m.Flags&FlagUnavailable == 0 }

func gen(t uint32, cfg uint64, counts string) Mapping {
	pmu := "cpu"
	fl := FlagGeneric
	if t == TypeSoftware {
		pmu = "software"
		fl = 0
	}
	return Mapping{Event: Event{Type: t, Config: cfg, PMU: pmu}, Flags: fl, Counts: counts}
}

func raw(cfg uint64, counts string) Mapping {
	return Mapping{Event: Event{Type: TypeRaw, Config: cfg, PMU: "cpu"}, Counts: counts}
}

func uncore(pmu string, cfg uint64, counts string) Mapping {
	return Mapping{Event: Event{Type: TypeDynamic, Config: cfg, PMU: pmu}, Flags: FlagUncore, Counts: counts}
}

func none(why string) Mapping {
	return Mapping{Flags: FlagUnavailable, Counts: why}
}

func approx(m Mapping) Mapping { m.Flags |= FlagApprox; return m }

// mappings[vendor][preset]. Software events are the same everywhere and
// filled in by init.
var mappings = [NumVendors][NumPresets]Mapping{
	VendorGeneric: {
		PAPI_TOT_CYC: gen(TypeHardware, hwCPUCycles, "generic cpu-cycles: core cycles as the PMU driver defines them"),
		PAPI_TOT_INS: gen(TypeHardware, hwInstructions, "generic instructions: instructions retired"),
		PAPI_REF_CYC: gen(TypeHardware, hwRefCPUCycles, "generic ref-cycles: constant-rate cycles, if the PMU driver has them"),
		PAPI_L1_DCM:  gen(TypeHWCache, hwCache(cacheL1D, cacheOpRead, cacheResultMiss), "generic L1-dcache-load-misses: L1 data read misses (driver-defined)"),
		PAPI_L2_TCM:  none("there is no generic L2 event in perf; only vendor raw events count L2 misses"),
		PAPI_L3_TCA:  approx(gen(TypeHardware, hwCacheReferences, "generic cache-references: last-level-cache references on most drivers, but the level is driver-defined")),
		PAPI_L3_TCM:  approx(gen(TypeHardware, hwCacheMisses, "generic cache-misses: last-level-cache misses on most drivers, but the level is driver-defined")),
		PAPI_BR_INS:  gen(TypeHardware, hwBranchInstr, "generic branch-instructions: branches retired"),
		PAPI_BR_MSP:  gen(TypeHardware, hwBranchMisses, "generic branch-misses: mispredicted branches retired"),
		PAPI_TLB_DM:  gen(TypeHWCache, hwCache(cacheDTLB, cacheOpRead, cacheResultMiss), "generic dTLB-load-misses: data TLB read misses (driver-defined)"),
		PAPI_TLB_IM:  gen(TypeHWCache, hwCache(cacheITLB, cacheOpRead, cacheResultMiss), "generic iTLB-load-misses: instruction TLB misses (driver-defined)"),
	},
	VendorIntel: {
		PAPI_TOT_CYC: gen(TypeHardware, hwCPUCycles, "CPU_CLK_UNHALTED.THREAD (fixed counter 1): core cycles while not halted, at the actual clock"),
		PAPI_TOT_INS: gen(TypeHardware, hwInstructions, "INST_RETIRED.ANY (fixed counter 0): instructions retired"),
		PAPI_REF_CYC: gen(TypeHardware, hwRefCPUCycles, "CPU_CLK_UNHALTED.REF_TSC (fixed counter 2): unhalted cycles at the TSC rate"),
		PAPI_L1_DCM:  gen(TypeHWCache, hwCache(cacheL1D, cacheOpRead, cacheResultMiss), "L1D.REPLACEMENT (0x51/0x01): L1 data cache lines allocated, i.e. load and store misses"),
		PAPI_L2_TCM:  raw(0x3f24, "L2_RQSTS.MISS (raw 0x24, umask 0x3f; Skylake and later): all L2 misses, demand data, code and prefetch; there is no generic L2 event"),
		PAPI_L3_TCA:  gen(TypeHardware, hwCacheReferences, "LONGEST_LAT_CACHE.REFERENCE (0x2e/0x4f) via generic cache-references: core requests that reach the L3 (LLC)"),
		PAPI_L3_TCM:  gen(TypeHardware, hwCacheMisses, "LONGEST_LAT_CACHE.MISS (0x2e/0x41) via generic cache-misses: core requests that miss the L3 (LLC); on Intel cache-misses really is the LLC"),
		PAPI_BR_INS:  gen(TypeHardware, hwBranchInstr, "BR_INST_RETIRED.ALL_BRANCHES: branches retired"),
		PAPI_BR_MSP:  gen(TypeHardware, hwBranchMisses, "BR_MISP_RETIRED.ALL_BRANCHES: mispredicted branches retired"),
		PAPI_TLB_DM:  approx(gen(TypeHWCache, hwCache(cacheDTLB, cacheOpRead, cacheResultMiss), "DTLB_LOAD_MISSES.WALK_COMPLETED via dTLB-load-misses: data TLB misses of loads that completed a page walk; stores are not included")),
		PAPI_TLB_IM:  gen(TypeHWCache, hwCache(cacheITLB, cacheOpRead, cacheResultMiss), "ITLB_MISSES.WALK_COMPLETED via iTLB-load-misses: instruction TLB misses that completed a page walk"),
	},
	VendorAMD: {
		PAPI_TOT_CYC: gen(TypeHardware, hwCPUCycles, "PMCx076 (LsNotHaltedCyc) via cpu-cycles: core cycles while not halted"),
		PAPI_TOT_INS: gen(TypeHardware, hwInstructions, "PMCx0C0 (ExRetInstr) via instructions: instructions retired"),
		PAPI_REF_CYC: gen(TypeHardware, hwRefCPUCycles, "PMCx120 (LsNotHaltedP0Cyc) via ref-cycles: unhalted cycles at the P0 clock; Zen 4 and later only, older Zen return EOPNOTSUPP/ENOENT (use the msr PMU's mperf instead)"),
		PAPI_L1_DCM:  gen(TypeHWCache, hwCache(cacheL1D, cacheOpRead, cacheResultMiss), "PMCx060 umask 0xc8 (L2 requests from DC misses) via L1-dcache-load-misses (kernels before 5.4 used PMCx041): L1 data misses that go to L2"),
		PAPI_L2_TCM:  raw(0x0964, "PMCx064 umask 0x09 (L2CacheReqStat: IC fill miss + DC miss in L2): L2 misses of core requests; this is what the generic cache-misses counts on Zen (trap: on Intel cache-misses is the LLC)"),
		PAPI_L3_TCA:  uncore("amd_l3", 0xff04, "amd_l3 uncore PMU, event 0x04 umask 0xff (L3LookupState, all): L3 accesses of the whole CCX; Zen has no core L3 event, so this is per L3 complex, per-CPU only, and every CPU of the CCX sees the same count"),
		PAPI_L3_TCM:  uncore("amd_l3", 0x0104, "amd_l3 uncore PMU, event 0x04 umask 0x01 (L3LookupState.L3Miss, Zen 3 and later; Zen 2 uses event 0x06 umask 0x01): L3 misses of the whole CCX, per-CPU only; the generic cache-misses is NOT this (it counts L2 misses on Zen)"),
		PAPI_BR_INS:  gen(TypeHardware, hwBranchInstr, "PMCx0C2 (ExRetBrn) via branch-instructions: branches retired"),
		PAPI_BR_MSP:  gen(TypeHardware, hwBranchMisses, "PMCx0C3 (ExRetBrnMisp) via branch-misses: mispredicted branches retired"),
		PAPI_TLB_DM:  gen(TypeHWCache, hwCache(cacheDTLB, cacheOpRead, cacheResultMiss), "PMCx045 umask 0xf0 (L1 DTLB miss that also missed the L2 DTLB: page walks) via dTLB-load-misses: data TLB misses, loads and stores"),
		PAPI_TLB_IM:  gen(TypeHWCache, hwCache(cacheITLB, cacheOpRead, cacheResultMiss), "PMCx085 (BpL1TlbMissL2TlbMiss) via iTLB-load-misses: instruction fetches that missed both ITLB levels"),
	},
}

func init() {
	sw := [...]struct {
		id  PresetID
		cfg uint64
		s   string
	}{
		{SW_TASK_CLOCK, swTaskClock, "software task-clock: nanoseconds the target ran (per CPU: time any task ran there)"},
		{SW_PAGE_FAULTS, swPageFaults, "software page-faults: minor + major page faults taken by the target"},
		{SW_CONTEXT_SWITCHES, swContextSwitches, "software context-switches: times the target was switched out"},
		{SW_CPU_MIGRATIONS, swCPUMigrations, "software cpu-migrations: times the target moved to another CPU"},
	}
	for v := range mappings {
		for p := range mappings[v] {
			mappings[v][p].Preset = PresetID(p)
			mappings[v][p].Vendor = Vendor(v)
		}
		for _, s := range sw {
			m := gen(TypeSoftware, s.cfg, s.s)
			m.Preset, m.Vendor = s.id, Vendor(v)
			mappings[v][s.id] = m
		}
	}
}

// AMDZen2L3MissConfig is the amd_l3 encoding of L3 misses on family 17h
// (Zen 1/2: L3CombClstrStatus.RequestMiss, event 0x06 umask 0x01); the
// vendor table holds the Zen 3+ encoding.
const AMDZen2L3MissConfig = 0x0106

// MappingForCPU is MappingFor refined by CPU family: the per-vendor table
// targets current parts, and a few events moved between generations.
func MappingForCPU(v Vendor, family int, p PresetID) (Mapping, bool) {
	m, ok := MappingFor(v, p)
	if !ok {
		return m, false
	}
	if v == VendorAMD && family == 0x17 && p == PAPI_L3_TCM {
		m.Event.Config = AMDZen2L3MissConfig
		m.Counts = "amd_l3 uncore PMU, event 0x06 umask 0x01 (L3CombClstrStatus.RequestMiss, Zen 1/2): L3 misses of the whole CCX, per-CPU only; the generic cache-misses is NOT this (it counts L2 misses on Zen)"
	}
	return m, true
}

// MappingFor returns how preset p is counted on vendor v.
func MappingFor(v Vendor, p PresetID) (Mapping, bool) {
	if v >= NumVendors || p >= NumPresets {
		return Mapping{}, false
	}
	return mappings[v][p], true
}

// Mappings returns the mapping table of vendor v in preset order.
func Mappings(v Vendor) []Mapping {
	if v >= NumVendors {
		return nil
	}
	out := make([]Mapping, NumPresets)
	copy(out, mappings[v][:])
	return out
}
