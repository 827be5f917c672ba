//go:build linux

package msr

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestCatalogueABI(t *testing.T) {
	want := []struct {
		name string
		addr uint32
	}{{"TSC", 0x10}, {"MPERF", 0xE7}, {"APERF", 0xE8}, {"SMI_COUNT", 0x34}, {"THERM_STATUS", 0x19C},
		{"PACKAGE_THERM_STATUS", 0x1B1}, {"TEMPERATURE_TARGET", 0x1A2}, {"RAPL_POWER_UNIT", 0x606},
		{"PKG_ENERGY_STATUS", 0x611}, {"DRAM_ENERGY_STATUS", 0x619}, {"PP0_ENERGY_STATUS", 0x639},
		{"PP1_ENERGY_STATUS", 0x641}, {"AMD_RAPL_POWER_UNIT", 0xC0010299}, {"AMD_CORE_ENERGY", 0xC001029A},
		{"AMD_PKG_ENERGY", 0xC001029B}, {"PERF_STATUS", 0x198}}
	cat := Catalogue()
	if len(cat) != NumMSRs || len(want) != NumMSRs {
		t.Fatalf("%d entries", len(cat))
	}
	for i, e := range cat {
		if e.ID != ID(i) || e.Name != want[i].name || e.Addr != want[i].addr || e.ID.String() != e.Name {
			t.Errorf("entry %d: %+v, want %v", i, e, want[i])
		}
		if e.Kind == KindCounter && (e.Width != 32 && e.Width != 64) || e.Kind == KindStatus && e.Width != 64 {
			t.Errorf("%s: width %d", e.Name, e.Width)
		}
		if len(e.Name) > 31 || len(e.Unit) > 15 {
			t.Errorf("%s: name or unit too long for a region column", e.Name)
		}
	}
}

func TestAllowlist(t *testing.T) {
	a := DefaultAllowlist()
	for _, e := range Catalogue() {
		if err := a.CheckRead(e.Addr); err != nil {
			t.Errorf("%s: %v", e.Name, err)
		}
		if m, ok := a.WriteMask(e.Addr); !ok || m != 0 {
			t.Errorf("%s: write mask %#x", e.Name, m)
		}
		if err := a.CheckWrite(e.Addr, 1); !errors.Is(err, ErrNotAllowed) {
			t.Errorf("%s: write allowed: %v", e.Name, err)
		}
	}
	if err := a.CheckRead(0x1A0); !errors.Is(err, ErrNotAllowed) { // IA32_MISC_ENABLE
		t.Errorf("unlisted MSR readable: %v", err)
	}
	var sb strings.Builder
	if _, err := a.WriteTo(&sb); err != nil {
		t.Fatal(err)
	}
	b, err := ParseAllowlist(strings.NewReader(sb.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Addrs()) != NumMSRs {
		t.Errorf("round trip lost entries:\n%s", sb.String())
	}
	for _, bad := range []string{"0x10", "0x10 0x0 0x1", "zz 0x0", "0x10 0x0\n0x10 0x0"} {
		if _, err := ParseAllowlist(strings.NewReader(bad)); !errors.Is(err, ErrSyntax) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestIntelServerDev(t *testing.T) {
	o, _ := fixture(t, "intel-server")
	o.Sources = []string{"dev"}
	r := Open(o)
	defer r.Close()
	if r.Vendor() != Intel {
		t.Fatalf("vendor %v", r.Vendor())
	}
	for _, c := range []struct {
		id    ID
		cpu   int
		value float64
		unit  string
	}{
		{TSC, 0, 0x123456789abc, "cycles"},
		{SMI_COUNT, 0, 7, "count"},
		{TEMPERATURE_TARGET, 0, 100, "°C"},
		{THERM_STATUS, 0, 100 - 0x27, "°C"},
		{PACKAGE_THERM_STATUS, 0, 100 - 0x24, "°C"},
		{THERM_STATUS, 1, 100 - 0x30, "°C"},
		{RAPL_POWER_UNIT, 0, 1.0 / (1 << 14), "J/unit"},
		{PKG_ENERGY_STATUS, 0, float64(0xDEADBEEF) / (1 << 14), "J"},
		{PERF_STATUS, 0, 2800, "MHz"},
	} {
		rd, err := r.Read(c.cpu, c.id)
		if err != nil {
			t.Errorf("%s cpu %d: %v", c.id, c.cpu, err)
			continue
		}
		if !near(rd.Value, c.value) || rd.Unit != c.unit || rd.Source != "dev" || !rd.Absolute {
			t.Errorf("%s cpu %d: %+v, want %v %s", c.id, c.cpu, rd, c.value, c.unit)
		}
	}
	// PP1 is not in the fixture file: the fake rdmsr "faults" (EOF ~ EIO).
	if _, err := r.Read(0, PP1_ENERGY_STATUS); !errors.Is(err, ErrNotSupported) {
		t.Errorf("PP1: %v, want ErrNotSupported", err)
	}
	// AMD registers on an Intel CPU.
	if _, err := r.Read(0, AMD_PKG_ENERGY); !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "this is an intel CPU") {
		t.Errorf("AMD MSR on Intel: %v", err)
	}
	// No such CPU.
	if _, err := r.Read(7, TSC); !errors.Is(err, ErrNotAvailable) {
		t.Errorf("cpu 7: %v", err)
	}
}

func TestAMDServerDev(t *testing.T) {
	o, _ := fixture(t, "amd-server")
	r := Open(o)
	defer r.Close()
	rd, err := r.Read(0, AMD_PKG_ENERGY)
	if err != nil {
		t.Fatal(err)
	}
	if rd.Source != "dev" || rd.Raw != 0xFFFFFF00 || !near(rd.JoulesPerUnit, 1.0/(1<<16)) || !near(rd.Value, float64(0xFFFFFF00)/(1<<16)) {
		t.Errorf("AMD package energy %+v", rd)
	}
	if rd, err = r.Read(0, AMD_CORE_ENERGY); err != nil || !near(rd.Value, 1) {
		t.Errorf("AMD core energy %+v %v", rd, err)
	}
	if _, err := r.Read(0, THERM_STATUS); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Intel thermal MSR on AMD: %v", err)
	}
}

func TestAllowlistEnforcedBySources(t *testing.T) {
	o, _ := fixture(t, "intel-server")
	al, err := ParseAllowlist(strings.NewReader("0xE7 0x0\n0xE8 0x0\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{"dev", "perf", "powercap"} {
		o := *o
		o.Sources, o.Allowlist = []string{src}, al
		r := Open(&o)
		for _, id := range []ID{TSC, PKG_ENERGY_STATUS} {
			if !r.sources[0].Has(id) {
				continue // the msr PMU has no energy event, powercap no TSC
			}
			_, err := r.Read(0, id)
			if !errors.Is(err, ErrNotAllowed) {
				t.Errorf("%s source read %s outside the allowlist: %v", src, id, err)
			}
		}
		r.Close()
	}
}

func TestPowercap(t *testing.T) {
	r := Open(&Options{Root: "testdata/intel-server", Sources: []string{"powercap"}})
	defer r.Close()
	for _, c := range []struct {
		id    ID
		cpu   int
		value float64
	}{
		{PKG_ENERGY_STATUS, 0, 123.456789},
		{PP0_ENERGY_STATUS, 1, 23.456789},
		{DRAM_ENERGY_STATUS, 0, 3.456789},
		{PKG_ENERGY_STATUS, 2, 987.654321}, // cpu 2 is on package 1
		{DRAM_ENERGY_STATUS, 3, 4.567890},
	} {
		rd, err := r.Read(c.cpu, c.id)
		if err != nil {
			t.Errorf("%s cpu %d: %v", c.id, c.cpu, err)
			continue
		}
		if !near(rd.Value, c.value) || rd.Source != "powercap" || rd.Range == 0 {
			t.Errorf("%s cpu %d: %+v, want %v J", c.id, c.cpu, rd, c.value)
		}
	}
	if _, err := r.Read(0, PP1_ENERGY_STATUS); !errors.Is(err, ErrNotAvailable) {
		t.Errorf("PP1 without an uncore zone: %v", err)
	}
	amd := Open(&Options{Root: "testdata/amd-server", Sources: []string{"powercap"}})
	defer amd.Close()
	if rd, err := amd.Read(1, AMD_PKG_ENERGY); err != nil || !near(rd.Value, 555.555555) {
		t.Errorf("AMD powercap package: %+v %v", rd, err)
	}
}

// On the VM fixture (and this machine): no /dev/cpu/*/msr, the msr PMU has
// only tsc, no powercap.
func TestVMFixture(t *testing.T) {
	r := Open(&Options{Root: "testdata/vm-nopmu"})
	defer r.Close()
	st := r.Sources()
	if len(st) != 3 || st[0].Available || !st[1].Available || st[2].Available {
		t.Fatalf("sources %+v", st)
	}
	if !strings.Contains(st[0].Reason, "modprobe msr") {
		t.Errorf("dev source reason %q", st[0].Reason)
	}
	_, err := r.Read(0, MPERF)
	if !errors.Is(err, ErrNotAvailable) || !strings.Contains(err.Error(), "no mperf event (it offers: tsc)") {
		t.Errorf("MPERF: %v", err)
	}
	_, err = r.Read(0, AMD_PKG_ENERGY)
	if !errors.Is(err, ErrNotAvailable) || !strings.Contains(err.Error(), "powercap") {
		t.Errorf("AMD energy: %v", err)
	}
}

// Real reads on this machine through whatever source exists (here the
// perf msr PMU's tsc).
func TestThisMachineTSC(t *testing.T) {
	r := Open(nil)
	defer r.Close()
	a, err := r.Read(0, TSC)
	if errors.Is(err, ErrNotAvailable) {
		t.Skipf("no TSC source here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	b, err := r.Read(0, TSC)
	if err != nil {
		t.Fatal(err)
	}
	if b.Raw <= a.Raw || b.Source != a.Source {
		t.Fatalf("TSC did not advance: %+v -> %+v", a, b)
	}
	t.Logf("TSC via %s advanced %d in ~20ms", a.Source, b.Raw-a.Raw)
	if _, err := os.Stat("/dev/cpu/0/msr"); err != nil {
		if a.Source != "perf" || a.Absolute {
			t.Errorf("without /dev/cpu the TSC should come from the perf msr PMU: %+v", a)
		}
	}
}

// The real pread path (perf-utils' MSR.Read) against a sparse file.
func TestDevPread(t *testing.T) {
	root := t.TempDir()
	setMSR(t, root, 0, 0x10, 0x1122334455667788)
	setMSR(t, root, 0, 0x606, 0xA1003)
	setMSR(t, root, 0, 0x611, 0x100000000|0x8000) // bits above 31 are reserved
	r := Open(&Options{Root: root, Sources: []string{"dev"}})
	defer r.Close()
	if rd, err := r.Read(0, TSC); err != nil || rd.Raw != 0x1122334455667788 {
		t.Errorf("TSC %+v %v", rd, err)
	}
	if rd, err := r.Read(0, PKG_ENERGY_STATUS); err != nil || rd.Raw != 0x8000 || !near(rd.Value, 0.5) {
		t.Errorf("package energy %+v %v", rd, err)
	}
	if _, err := r.Read(0, PP1_ENERGY_STATUS); !errors.Is(err, ErrNotSupported) {
		t.Errorf("read past the end: %v", err)
	}
}

func BenchmarkReadTSC(b *testing.B) {
	r := Open(nil)
	defer r.Close()
	if _, err := r.Read(0, TSC); err != nil {
		b.Skip(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := r.Read(0, TSC); err != nil {
			b.Fatal(err)
		}
	}
}
