package pmu

import (
	"regexp"
	"testing"
)

func TestPresetABI(t *testing.T) {
	want := []string{"PAPI_TOT_CYC", "PAPI_TOT_INS", "PAPI_REF_CYC", "PAPI_L1_DCM", "PAPI_L2_TCM", "PAPI_L3_TCA",
		"PAPI_L3_TCM", "PAPI_BR_INS", "PAPI_BR_MSP", "PAPI_TLB_DM", "PAPI_TLB_IM",
		"SW_TASK_CLOCK", "SW_PAGE_FAULTS", "SW_CONTEXT_SWITCHES", "SW_CPU_MIGRATIONS"}
	ps := Presets()
	if len(ps) != NumPresets || len(want) != NumPresets {
		t.Fatalf("%d presets", len(ps))
	}
	col := regexp.MustCompile(`^[a-z][a-z0-9_]{0,30}$`)
	seen := map[string]bool{}
	for i, p := range ps {
		if p.ID != PresetID(i) || p.Name != want[i] || p.ID.String() != want[i] {
			t.Errorf("preset %d: %+v, want %s", i, p, want[i])
		}
		if !col.MatchString(p.Column) || seen[p.Column] {
			t.Errorf("column %q is not a unique identifier of at most 31 bytes", p.Column)
		}
		seen[p.Column] = true
		if id, ok := PresetByName(p.Column); !ok || id != p.ID {
			t.Errorf("PresetByName(%q)", p.Column)
		}
		for v := Vendor(0); v < NumVendors; v++ {
			m, _ := MappingFor(v, p.ID)
			if m.Preset != p.ID || m.Vendor != v || m.Counts == "" {
				t.Errorf("%v/%s mapping %+v", v, p.Name, m)
			}
			if m.Available() && m.Event.PMU == "" {
				t.Errorf("%v/%s has no PMU", v, p.Name)
			}
			if p.Software != (m.Event.Type == TypeSoftware) {
				t.Errorf("%v/%s: software %v, type %d", v, p.Name, p.Software, m.Event.Type)
			}
		}
	}
}

// The traps the table must encode.
func TestVendorTraps(t *testing.T) {
	intelL3, _ := MappingFor(VendorIntel, PAPI_L3_TCM)
	amdL2, _ := MappingFor(VendorAMD, PAPI_L2_TCM)
	amdL3, _ := MappingFor(VendorAMD, PAPI_L3_TCM)
	if intelL3.Event != (Event{TypeHardware, hwCacheMisses, "cpu"}) {
		t.Errorf("Intel LLC misses: %+v", intelL3.Event)
	}
	if amdL2.Event.Config != 0x0964 {
		t.Errorf("AMD L2 misses: %+v (want PMCx064 umask 0x09, what cache-misses counts on Zen)", amdL2.Event)
	}
	if amdL3.Flags&FlagUncore == 0 {
		t.Errorf("AMD L3 misses must be uncore: %+v", amdL3)
	}
	if g, _ := MappingFor(VendorGeneric, PAPI_L2_TCM); g.Available() {
		t.Error("generic L2 misses claimed")
	}
}
