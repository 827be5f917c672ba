//go:build linux

package pmu

import (
	"errors"
	"github.com/kushm/kushm/internal/sys/perfsys"
	"strings"
	"testing"
)

func staticProbe(t *testing.T, fixture string) *Report {
	t.Helper()
	r := Probe(&ProbeOptions{Root: "testdata/" + fixture, Static: true})
	if len(r.Presets) != NumPresets {
		t.Fatalf("%d presets", len(r.Presets))
	}
	for _, a := range r.Presets {
		t.Logf("%-20s %v", a.Preset.Name, a)
	}
	return r
}

func wantAvailable(t *testing.T, r *Report, ids ...PresetID) {
	t.Helper()
	for _, id := range ids {
		if a := r.Presets[id]; !a.Available {
			t.Errorf("%s unavailable: %v", id, a.Err)
		}
	}
}

func wantUnavailable(t *testing.T, r *Report, kind error, reason string, ids ...PresetID) {
	t.Helper()
	for _, id := range ids {
		a := r.Presets[id]
		if a.Available {
			t.Errorf("%s available, want %v", id, kind)
			continue
		}
		if !errors.Is(a.Err, kind) || !errors.Is(a.Err, ErrNotAvailable) {
			t.Errorf("%s: %v does not match %v", id, a.Err, kind)
		}
		if !strings.Contains(a.Reason, reason) {
			t.Errorf("%s: reason %q lacks %q", id, a.Reason, reason)
		}
	}
}

func TestFixtureIntelServer(t *testing.T) {
	r := staticProbe(t, "intel-server")
	if r.System.Vendor != VendorIntel || r.System.CorePMU != "cpu" || !r.System.Privileged {
		t.Fatalf("system %+v", r.System)
	}
	for id := PresetID(0); id < NumPresets; id++ {
		wantAvailable(t, r, id)
	}
	if m := r.Presets[PAPI_L3_TCM].Mapping; m.Event.Type != TypeHardware || m.Event.Config != hwCacheMisses {
		t.Errorf("Intel L3 misses should be the generic cache-misses: %+v", m.Event)
	}
	if m := r.Presets[PAPI_L2_TCM].Mapping; m.Event.Type != TypeRaw {
		t.Errorf("Intel L2 misses need a raw event: %+v", m.Event)
	}
}

func TestFixtureAMDServer(t *testing.T) {
	r := staticProbe(t, "amd-server")
	if r.System.Vendor != VendorAMD {
		t.Fatalf("vendor %v", r.System.Vendor)
	}
	for id := PresetID(0); id < NumPresets; id++ {
		wantAvailable(t, r, id)
	}
	// The trap: generic cache-misses is L2 on Zen, so L3 misses must not use it.
	m := r.Presets[PAPI_L3_TCM].Mapping
	if m.Event.Type == TypeHardware && m.Event.Config == hwCacheMisses {
		t.Fatal("AMD L3 misses mapped to generic cache-misses, which counts L2 misses on Zen")
	}
	if m.Flags&FlagUncore == 0 || m.Event.PMU != "amd_l3" {
		t.Errorf("AMD L3 misses should come from the amd_l3 uncore PMU: %+v", m)
	}
	// Uncore presets cannot be counted per process.
	sys := LoadSystem("testdata/amd-server")
	if _, uerr := resolve(sys, m, targetTask, false); uerr == nil || !errors.Is(uerr, ErrNotSupported) {
		t.Errorf("per-process L3 on AMD: %v, want ErrNotSupported", uerr)
	}
	attr, uerr := resolve(sys, m, targetCPU, false)
	if uerr != nil || attr.Type != 11 {
		t.Errorf("per-CPU L3 on AMD: %+v %v, want the amd_l3 type 11", attr, uerr)
	}
}

func TestFixtureVMWithoutPMU(t *testing.T) {
	r := staticProbe(t, "vm-nopmu")
	wantAvailable(t, r, SW_TASK_CLOCK, SW_PAGE_FAULTS, SW_CONTEXT_SWITCHES, SW_CPU_MIGRATIONS)
	wantUnavailable(t, r, ErrNoPMU, "the kernel has no hardware PMU for this CPU",
		PAPI_TOT_CYC, PAPI_TOT_INS, PAPI_REF_CYC, PAPI_L1_DCM, PAPI_L2_TCM, PAPI_BR_INS, PAPI_BR_MSP, PAPI_TLB_DM, PAPI_TLB_IM)
	wantUnavailable(t, r, ErrNoPMU, "no amd_l3 uncore PMU", PAPI_L3_TCA, PAPI_L3_TCM)
}

func TestFixturePermission(t *testing.T) {
	r := staticProbe(t, "noperm")
	if r.System.Privileged || r.System.Paranoid != 3 {
		t.Fatalf("system %+v", r.System)
	}
	for id := PresetID(0); id < NumPresets; id++ {
		wantUnavailable(t, r, ErrPermission, "perf_event_paranoid is 3", id)
	}
	if !strings.Contains(r.Presets[0].Reason, "CAP_PERFMON") {
		t.Errorf("reason %q does not name CAP_PERFMON", r.Presets[0].Reason)
	}
}

func TestParanoidLevels(t *testing.T) {
	sys := &System{Vendor: VendorIntel, CorePMU: "cpu", PMUs: map[string]uint32{"cpu": 4, "software": 1}, ParanoidKnown: true}
	m := mappings[VendorIntel][PAPI_TOT_INS]
	for _, c := range []struct {
		paranoid int
		tk       targetKind
		exclKern bool
		ok       bool
	}{
		{2, targetTask, true, true},
		{2, targetTask, false, false},
		{1, targetTask, false, true},
		{1, targetCPU, true, false},
		{0, targetCPU, false, true},
		{-1, targetCgroup, false, true},
		{3, targetTask, true, false},
	} {
		sys.Paranoid = c.paranoid
		_, uerr := resolve(sys, m, c.tk, c.exclKern)
		if (uerr == nil) != c.ok {
			t.Errorf("paranoid %d %v excludeKernel %v: %v", c.paranoid, c.tk, c.exclKern, uerr)
		}
		if uerr != nil && !errors.Is(uerr, ErrPermission) {
			t.Errorf("paranoid %d: %v is not ErrPermission", c.paranoid, uerr)
		}
	}
}

func TestIMCFixtures(t *testing.T) {
	units, err := DiscoverIMC("testdata/intel-server")
	if err != nil {
		t.Fatal(err)
	}
	if len(units) != 4 {
		t.Fatalf("%d IMC units", len(units))
	}
	u := units[0]
	if u.Name != "uncore_imc_0" || u.Type != 20 || u.Read.Config[0] != 0xcf05 || u.Write.Config[0] != 0xf005 {
		t.Errorf("unit %+v", u)
	}
	if u.BytesPerCount != BytesPerCAS {
		t.Errorf("bytes per CAS %v, want 64 (the kernel scale 6.103515625e-5 MiB)", u.BytesPerCount)
	}
	if len(u.CPUs) != 2 || u.CPUs[1] != 2 {
		t.Errorf("cpus %v", u.CPUs)
	}
	for _, f := range []string{"amd-server", "vm-nopmu"} {
		_, err := DiscoverIMC("testdata/" + f)
		if !errors.Is(err, ErrNoPMU) || !errors.Is(err, ErrNotAvailable) {
			t.Errorf("%s: %v, want ErrNoPMU", f, err)
		}
		if err != nil && !strings.Contains(err.Error(), "not available on this machine, because there are no uncore_imc_*") {
			t.Errorf("%s: message %q", f, err)
		}
	}
	if _, err := DiscoverIMC("/"); err == nil {
		t.Log("this machine has IMC PMUs")
	} else if !errors.Is(err, ErrNoPMU) {
		t.Errorf("this machine: %v", err)
	}
}

func TestOpenIMCHere(t *testing.T) {
	r, err := OpenIMC("/")
	if err == nil {
		defer r.Close()
		if _, err := r.Read(); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !errors.Is(err, ErrNotAvailable) {
		t.Fatalf("OpenIMC: %v does not match ErrNotAvailable", err)
	}
}

func TestEventFor(t *testing.T) {
	amd := LoadSystem("testdata/amd-server")
	ev, err := amd.EventFor(PAPI_L3_TCM)
	if err != nil || ev.Type != 11 || ev.Config != 0x0104 || ev.PMU != "amd_l3" {
		t.Errorf("AMD L3 misses: %+v %v", ev, err)
	}
	vm := LoadSystem("testdata/vm-nopmu")
	if _, err := vm.EventFor(PAPI_TOT_INS); !errors.Is(err, ErrNoPMU) {
		t.Errorf("VM instructions: %v", err)
	}
	if ev, err := vm.EventFor(SW_CONTEXT_SWITCHES); err != nil || ev.Type != TypeSoftware || ev.Config != 3 {
		t.Errorf("VM context switches: %+v %v", ev, err)
	}
	if len(AllPresets()) != NumPresets {
		t.Error("AllPresets")
	}
}

func TestZen2L3Miss(t *testing.T) {
	sys := &System{Vendor: VendorAMD, Family: 0x17}
	if m := sys.Mapping(PAPI_L3_TCM); m.Event.Config != AMDZen2L3MissConfig || m.Event.PMU != "amd_l3" {
		t.Errorf("Zen 2 L3 misses %+v", m.Event)
	}
	sys.Family = 0x19
	if m := sys.Mapping(PAPI_L3_TCM); m.Event.Config != 0x0104 {
		t.Errorf("Zen 3/4 L3 misses %+v", m.Event)
	}
}

// ENOENT for a software event counted in a cgroup names the cgroup's
// missing perf_event controller, not the event (every kernel knows the
// software events); for a task it stays the event's.
func TestClassifyCgroupENOENT(t *testing.T) {
	sys := &System{Vendor: VendorIntel, CorePMU: "cpu", PMUs: map[string]uint32{"cpu": 4, "software": 1}}
	m := mappings[VendorIntel][SW_TASK_CLOCK]
	if m.Event.PMU != "software" {
		t.Fatalf("SW_TASK_CLOCK's PMU is %q", m.Event.PMU)
	}
	enoent := &perfsys.OpenError{Errno: perfsys.ENOENT}
	cg := classify(sys, m, targetCgroup, enoent)
	if !strings.Contains(cg.Error(), "no perf_event controller") || !errors.Is(cg, ErrNotSupported) {
		t.Errorf("cgroup: %v", cg)
	}
	task := classify(sys, m, targetTask, enoent)
	if strings.Contains(task.Error(), "perf_event controller") {
		t.Errorf("task: %v", task)
	}
}
