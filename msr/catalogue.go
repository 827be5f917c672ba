package msr

import "fmt"

// ID identifies a catalogue entry. IDs are ABI: they are the column index
// of the region's "msr" section. Never reorder; append only.
type ID uint32

// Catalogue IDs, in ABI order.
const (
	TSC ID = iota
	MPERF
	APERF
	SMI_COUNT
	THERM_STATUS
	PACKAGE_THERM_STATUS
	TEMPERATURE_TARGET
	RAPL_POWER_UNIT
	PKG_ENERGY_STATUS
	DRAM_ENERGY_STATUS
	PP0_ENERGY_STATUS
	PP1_ENERGY_STATUS
	AMD_RAPL_POWER_UNIT
	AMD_CORE_ENERGY
	AMD_PKG_ENERGY
	PERF_STATUS

	// NumMSRs is the number of catalogue entries.
	NumMSRs = 16
)

// Scope says which CPUs share one instance of a register.
type Scope uint8

const (
	ScopeThread  Scope = iota // one per logical CPU
	ScopeCore                 // shared by the SMT siblings of a core
	ScopePackage              // shared by a whole socket (package/die)
)

func (s Scope) String() string {
	switch s {
	case ScopeThread:
		return "thread"
	case ScopeCore:
		return "core"
	case ScopePackage:
		return "package"
	}
	return fmt.Sprintf("Scope(%d)", uint8(s))
}

// MarshalText encodes the scope by name.
func (s Scope) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Kind says how a register's value behaves.
type Kind uint8

const (
	// KindCounter: a monotonic counter of Width bits that wraps.
	KindCounter Kind = iota
	// KindStatus: a status or configuration register; read, decode, done.
	KindStatus
)

func (k Kind) String() string {
	if k == KindCounter {
		return "counter"
	}
	return "status"
}

// MarshalText encodes the kind by name.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Vendors that implement an entry (a bit set).
type Vendors uint8

const (
	Intel Vendors = 1 << iota
	AMD

	AnyVendor = Intel | AMD
)

func (v Vendors) String() string {
	switch v {
	case Intel:
		return "intel"
	case AMD:
		return "amd"
	case AnyVendor:
		return "intel,amd"
	}
	return "none"
}

// MarshalText encodes the vendor set by name.
func (v Vendors) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// Entry is one catalogue register.
type Entry struct {
	ID      ID      `json:"id"`
	Name    string  `json:"name"`
	Addr    uint32  `json:"addr"`
	Scope   Scope   `json:"scope"`
	Kind    Kind    `json:"kind"`
	Vendors Vendors `json:"vendors"`
	// Width is the number of significant bits of a counter (it wraps at
	// 2^Width), or 64 for status registers.
	Width uint8 `json:"width"`
	// Unit of the decoded value: "cycles", "count", "J", "°C", "MHz", "J/unit".
	Unit        string `json:"unit"`
	Description string `json:"description"`
}

var catalogue = [NumMSRs]Entry{
	{TSC, "TSC", 0x10, ScopeThread, KindCounter, AnyVendor, 64, "cycles", "IA32_TIME_STAMP_COUNTER: constant-rate time-stamp counter"},
	{MPERF, "MPERF", 0xE7, ScopeThread, KindCounter, AnyVendor, 64, "cycles", "IA32_MPERF: unhalted cycles at the reference (TSC/P0) rate"},
	{APERF, "APERF", 0xE8, ScopeThread, KindCounter, AnyVendor, 64, "cycles", "IA32_APERF: unhalted cycles at the actual clock"},
	{SMI_COUNT, "SMI_COUNT", 0x34, ScopeThread, KindCounter, Intel, 32, "count", "MSR_SMI_COUNT: system management interrupts since reset (bits 31:0)"},
	{THERM_STATUS, "THERM_STATUS", 0x19C, ScopeCore, KindStatus, Intel, 64, "°C", "IA32_THERM_STATUS: core temperature as TjMax minus the digital readout (bits 22:16, valid bit 31)"},
	{PACKAGE_THERM_STATUS, "PACKAGE_THERM_STATUS", 0x1B1, ScopePackage, KindStatus, Intel, 64, "°C", "IA32_PACKAGE_THERM_STATUS: package temperature as TjMax minus the readout (bits 22:16)"},
	{TEMPERATURE_TARGET, "TEMPERATURE_TARGET", 0x1A2, ScopePackage, KindStatus, Intel, 64, "°C", "MSR_TEMPERATURE_TARGET: TjMax, the throttling temperature (bits 23:16)"},
	{RAPL_POWER_UNIT, "RAPL_POWER_UNIT", 0x606, ScopePackage, KindStatus, Intel, 64, "J/unit", "MSR_RAPL_POWER_UNIT: energy status unit 1/2^ESU J (bits 12:8), power and time units"},
	{PKG_ENERGY_STATUS, "PKG_ENERGY_STATUS", 0x611, ScopePackage, KindCounter, Intel, 32, "J", "MSR_PKG_ENERGY_STATUS: package energy, 32-bit counter in energy status units"},
	{DRAM_ENERGY_STATUS, "DRAM_ENERGY_STATUS", 0x619, ScopePackage, KindCounter, Intel, 32, "J", "MSR_DRAM_ENERGY_STATUS: DRAM energy, 32-bit (Xeon: fixed 15.3 µJ unit, not RAPL_POWER_UNIT)"},
	{PP0_ENERGY_STATUS, "PP0_ENERGY_STATUS", 0x639, ScopePackage, KindCounter, Intel, 32, "J", "MSR_PP0_ENERGY_STATUS: energy of all cores of the package, 32-bit"},
	{PP1_ENERGY_STATUS, "PP1_ENERGY_STATUS", 0x641, ScopePackage, KindCounter, Intel, 32, "J", "MSR_PP1_ENERGY_STATUS: uncore/graphics energy (client parts), 32-bit"},
	{AMD_RAPL_POWER_UNIT, "AMD_RAPL_POWER_UNIT", 0xC0010299, ScopePackage, KindStatus, AMD, 64, "J/unit", "MSR_AMD_RAPL_POWER_UNIT (Core::X86::Msr::RAPL_PWR_UNIT): energy unit 1/2^ESU J (bits 12:8)"},
	{AMD_CORE_ENERGY, "AMD_CORE_ENERGY", 0xC001029A, ScopeCore, KindCounter, AMD, 32, "J", "MSR_AMD_CORE_ENERGY_STATUS: energy of one core, 32-bit"},
	{AMD_PKG_ENERGY, "AMD_PKG_ENERGY", 0xC001029B, ScopePackage, KindCounter, AMD, 32, "J", "MSR_AMD_PKG_ENERGY_STATUS: energy of the socket, 32-bit"},
	{PERF_STATUS, "PERF_STATUS", 0x198, ScopeThread, KindStatus, Intel, 64, "MHz", "IA32_PERF_STATUS: current P-state ratio (bits 15:8) × 100 MHz bus clock"},
}

// Catalogue returns all entries in ID order (a copy).
func Catalogue() []Entry {
	out := make([]Entry, NumMSRs)
	copy(out, catalogue[:])
	return out
}

// Lookup returns entry id.
func Lookup(id ID) (Entry, bool) {
	if id >= NumMSRs {
		return Entry{}, false
	}
	return catalogue[id], true
}

// ByAddr returns the entry for MSR address addr.
func ByAddr(addr uint32) (Entry, bool) {
	for _, e := range catalogue {
		if e.Addr == addr {
			return e, true
		}
	}
	return Entry{}, false
}

// ByName returns the entry named name.
func ByName(name string) (Entry, bool) {
	for _, e := range catalogue {
		if e.Name == name {
			return e, true
		}
	}
	return Entry{}, false
}

func (id ID) String() string {
	if id >= NumMSRs {
		return fmt.Sprintf("ID(%d)", uint32(id))
	}
	return catalogue[id].Name
}

// energyUnitFor returns the unit register that scales an energy counter.
func energyUnitFor(id ID) (ID, bool) {
	switch id {
	case PKG_ENERGY_STATUS, DRAM_ENERGY_STATUS, PP0_ENERGY_STATUS, PP1_ENERGY_STATUS:
		return RAPL_POWER_UNIT, true
	case AMD_CORE_ENERGY, AMD_PKG_ENERGY:
		return AMD_RAPL_POWER_UNIT, true
	}
	return 0, false
}

// UnmarshalText decodes a scope name.
func (s *Scope) UnmarshalText(b []byte) error {
	for c := ScopeThread; c <= ScopePackage; c++ {
		if c.String() == string(b) {
			*s = c
			return nil
		}
	}
	return fmt.Errorf("unknown scope %q: %w", b, ErrSyntax)
}

// UnmarshalText decodes a kind name.
func (k *Kind) UnmarshalText(b []byte) error {
	for _, c := range []Kind{KindCounter, KindStatus} {
		if c.String() == string(b) {
			*k = c
			return nil
		}
	}
	return fmt.Errorf("unknown kind %q: %w", b, ErrSyntax)
}

// UnmarshalText decodes a vendor set.
func (v *Vendors) UnmarshalText(b []byte) error {
	for _, c := range []Vendors{0, Intel, AMD, AnyVendor} {
		if c.String() == string(b) {
			*v = c
			return nil
		}
	}
	return fmt.Errorf("unknown vendors %q: %w", b, ErrSyntax)
}
