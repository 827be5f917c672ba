//go:build linux

package msr

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/kushm/kushm/internal/abi"
)

// Options configure Open.
type Options struct {
	// Root of the /dev, /sys and /proc trees; "" means "/".
	Root string
	// Allowlist every source enforces; nil means DefaultAllowlist.
	Allowlist *Allowlist
	// Sources to try, in order; nil means {"dev", "perf", "powercap"}.
	Sources []string
	// DRAMEnergyUnit overrides the DRAM energy unit in joules (Xeon
	// servers use a fixed 2^-16 J ≈ 15.3 µJ instead of RAPL_POWER_UNIT's);
	// 0 means use RAPL_POWER_UNIT.
	DRAMEnergyUnit float64

	// devOpen replaces the /dev/cpu/N/msr opener (tests).
	devOpen func(path string) (msrFile, error)
}

// SourceStatus says whether a source is present on this machine.
type SourceStatus struct {
	Name      string `json:"name"`
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
}

// Reader reads catalogue entries through the first source that can.
// It is not safe for concurrent use; open one per goroutine.
type Reader struct {
	root    string
	vendors Vendors
	sources []Source
	status  []SourceStatus
	dram    float64
	// static caches decoded static registers (energy units, TjMax) per
	// CPU and entry: they do not change while the machine runs.
	static map[[2]int]float64
}

// Reading is one decoded catalogue value.
type Reading struct {
	ID     ID     `json:"id"`
	Name   string `json:"name"`
	CPU    int    `json:"cpu"`
	Source string `json:"source"`
	// Raw is the register (or source) value.
	Raw uint64 `json:"raw"`
	// Absolute is false when Raw counts from the source's first read
	// (perf msr PMU): only differences are meaningful.
	Absolute bool `json:"absolute"`
	// Range is the wrap modulus of Raw (0: 2^64).
	Range uint64 `json:"range,omitempty"`
	// Value is Raw decoded into Unit (energy in J, temperatures in °C...).
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// JoulesPerUnit scales Raw for energy counters.
	JoulesPerUnit float64 `json:"joules_per_unit,omitempty"`
}

// Open discovers the sources under o.Root. It does not fail: absent
// sources are reported by Sources.
func Open(o *Options) *Reader {
	if o == nil {
		o = &Options{}
	}
	names := o.Sources
	if names == nil {
		names = []string{"dev", "perf", "powercap"}
	}
	r := &Reader{root: o.Root, vendors: vendorOf(o.Root), dram: o.DRAMEnergyUnit, static: map[[2]int]float64{}}
	for _, n := range names {
		var s Source
		var err error
		switch n {
		case "dev":
			s, err = newDevSource(o.Root, o.Allowlist, o.devOpen)
		case "perf":
			s, err = NewPerfSource(o.Root, o.Allowlist)
		case "powercap":
			s, err = NewPowercapSource(o.Root, o.Allowlist, r.vendors == AMD)
		default:
			err = fmt.Errorf("unknown source %q: %w", n, ErrNoSource)
		}
		st := SourceStatus{Name: n, Available: err == nil}
		if err != nil {
			st.Reason = err.Error()
		} else {
			r.sources = append(r.sources, s)
		}
		r.status = append(r.status, st)
	}
	return r
}

// vendorOf reads the CPU vendor from <root>/proc/cpuinfo (AnyVendor when
// unknown).
func vendorOf(root string) Vendors {
	b, err := os.ReadFile(rooted(root, "/proc/cpuinfo"))
	if err != nil {
		return AnyVendor
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "vendor_id" {
			switch strings.TrimSpace(v) {
			case "GenuineIntel":
				return Intel
			case "AuthenticAMD", "HygonGenuine":
				return AMD
			}
			return AnyVendor
		}
	}
	return AnyVendor
}

// Sources reports which sources exist here and why the others do not.
func (r *Reader) Sources() []SourceStatus { return r.status }

// Vendor is the CPU vendor the reader found (AnyVendor when unknown).
func (r *Reader) Vendor() Vendors { return r.vendors }

// PerfFD is the perf msr PMU event the perf source reads for id on cpu
// (opened by an earlier ReadRaw through it), or -1: for a sampler that
// reads the event on cpu itself (internal/cpubpf) instead of ReadRaw,
// which reads it from the caller's CPU through an interrupt to cpu. The
// event stays owned by the Reader.
func (r *Reader) PerfFD(cpu int, id ID) int {
	for _, s := range r.sources {
		if ps, ok := s.(*PerfSource); ok {
			if fd, ok := ps.fds[[2]int{cpu, int(id)}]; ok {
				return fd
			}
		}
	}
	return -1
}

// ForgetCPU closes the perf msr events of cpu; the next ReadRaw opens
// them again. A CPU that went offline and came back keeps events that no
// longer count (their counts restart from zero once opened again).
func (r *Reader) ForgetCPU(cpu int) {
	for _, s := range r.sources {
		if ps, ok := s.(*PerfSource); ok {
			ps.forget(cpu)
		}
	}
}

// Close closes all sources.
func (r *Reader) Close() error {
	var errs []error
	for _, s := range r.sources {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// ReadRaw reads entry id on cpu through the first source that can, without
// decoding.
func (r *Reader) ReadRaw(cpu int, id ID) (Raw, string, error) {
	e, ok := Lookup(id)
	if !ok {
		return Raw{}, "", fmt.Errorf("read MSR entry %d: %w", uint32(id), ErrNotSupported)
	}
	if r.vendors&e.Vendors == 0 {
		return Raw{}, "", unavailable(id, cpu, abi.InfoSourceMSR, ErrNotSupported, nil, "%s is an %s register and this is an %s CPU", e.Name, e.Vendors, r.vendors)
	}
	var reasons []string
	var errs []error
	var kind error = ErrNoSource
	for _, s := range r.sources {
		if !s.Has(id) {
			continue
		}
		raw, err := s.Read(cpu, id)
		if err == nil {
			return raw, s.Name(), nil
		}
		var ue *UnavailableError
		if errors.As(err, &ue) {
			reasons = append(reasons, s.Name()+": "+ue.Cause)
			if kind == ErrNoSource || ue.Kind == ErrPermission {
				kind = ue.Kind
			}
		} else {
			reasons = append(reasons, s.Name()+": "+err.Error())
		}
		errs = append(errs, err)
	}
	for _, st := range r.status {
		if !st.Available {
			reasons = append(reasons, st.Name+": "+st.Reason)
		}
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "no source offers it")
	}
	return Raw{}, "", unavailable(id, cpu, abi.InfoSourceMSR, kind, errors.Join(errs...), "%s", strings.Join(reasons, "; "))
}

// Read reads and decodes entry id on cpu. Energy counters are decoded with
// the unit register read through the same sources; temperatures with
// TEMPERATURE_TARGET (when it cannot be read, Value is the distance to
// TjMax and Unit says so).
func (r *Reader) Read(cpu int, id ID) (Reading, error) {
	raw, src, err := r.ReadRaw(cpu, id)
	if err != nil {
		return Reading{}, err
	}
	e, _ := Lookup(id)
	rd := Reading{ID: id, Name: e.Name, CPU: cpu, Source: src, Raw: raw.Value, Absolute: raw.Absolute, Range: raw.Range, Unit: e.Unit}
	switch id {
	case PKG_ENERGY_STATUS, DRAM_ENERGY_STATUS, PP0_ENERGY_STATUS, PP1_ENERGY_STATUS, AMD_CORE_ENERGY, AMD_PKG_ENERGY:
		j := raw.Scale
		if j == 0 {
			if id == DRAM_ENERGY_STATUS && r.dram != 0 {
				j = r.dram
			} else {
				uid, _ := energyUnitFor(id)
				var err error
				if j, err = r.staticValue(cpu, uid, EnergyUnit); err != nil {
					return Reading{}, fmt.Errorf("decode %s: %w", e.Name, err)
				}
			}
			rd.Raw &= 0xffffffff
		}
		rd.JoulesPerUnit = j
		rd.Value = float64(rd.Raw) * j
	case THERM_STATUS, PACKAGE_THERM_STATUS:
		below, valid := ThermReadout(raw.Value)
		if !valid && e.ID == THERM_STATUS {
			return Reading{}, unavailable(id, cpu, abi.InfoSourceMSR, ErrNotSupported, nil, "the thermal readout is not valid (bit 31 clear)")
		}
		tj, err := r.staticValue(cpu, TEMPERATURE_TARGET, func(v uint64) float64 { return float64(TjMax(v)) })
		if err != nil {
			rd.Value, rd.Unit = float64(below), "°C below TjMax"
		} else {
			rd.Value = tj - float64(below)
		}
	case TEMPERATURE_TARGET:
		rd.Value = float64(TjMax(raw.Value))
	case RAPL_POWER_UNIT, AMD_RAPL_POWER_UNIT:
		rd.Value = EnergyUnit(raw.Value)
	case PERF_STATUS:
		rd.Value = PerfStatusMHz(raw.Value)
	case SMI_COUNT:
		rd.Raw &= 0xffffffff
		rd.Value = float64(rd.Raw)
	default:
		rd.Value = float64(raw.Value)
	}
	return rd, nil
}

// staticValue reads and decodes a register that does not change (energy
// units, TjMax) once per CPU.
func (r *Reader) staticValue(cpu int, id ID, decode func(uint64) float64) (float64, error) {
	k := [2]int{cpu, int(id)}
	if v, ok := r.static[k]; ok {
		return v, nil
	}
	raw, _, err := r.ReadRaw(cpu, id)
	if err != nil {
		return 0, err
	}
	v := decode(raw.Value)
	r.static[k] = v
	return v, nil
}

// EnergyUnit decodes RAPL_POWER_UNIT / AMD_RAPL_POWER_UNIT: joules per
// energy-counter increment, 1/2^ESU with ESU in bits 12:8.
func EnergyUnit(v uint64) float64 { return math.Ldexp(1, -int((v>>8)&0x1f)) }

// PowerUnit decodes the power unit in watts (bits 3:0).
func PowerUnit(v uint64) float64 { return math.Ldexp(1, -int(v&0xf)) }

// TjMax decodes TEMPERATURE_TARGET bits 23:16, in °C.
func TjMax(v uint64) int { return int((v >> 16) & 0xff) }

// ThermReadout decodes THERM_STATUS / PACKAGE_THERM_STATUS: degrees below
// TjMax (bits 22:16) and the reading-valid bit (31; the package register
// has none, so valid is true).
func ThermReadout(v uint64) (belowTjMax int, valid bool) {
	return int((v >> 16) & 0x7f), v&(1<<31) != 0
}

// PerfStatusMHz decodes IA32_PERF_STATUS: ratio (bits 15:8) × 100 MHz.
func PerfStatusMHz(v uint64) float64 { return float64((v>>8)&0xff) * 100 }
