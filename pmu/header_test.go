package pmu_test

import (
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/tools/kgen"
)

const pmuHeader = "../kmod/include/generated/kushm_pmu.h"

// The committed header must be what go generate writes, and must say what
// the Go tables say (parsed back independently of the generator).
func TestGeneratedHeader(t *testing.T) {
	got, err := os.ReadFile(pmuHeader)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(kgen.PMUHeader()) {
		t.Fatalf("%s is stale: run go generate ./pmu", pmuHeader)
	}
	if !regexp.MustCompile(`^/\* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 \*/\n/\* Code generated .* DO NOT EDIT\. \*/\n`).Match(got) {
		t.Error("header does not start with the SPDX and Code generated lines")
	}
	enum := regexp.MustCompile(`(?m)^\tKUSHM_([A-Z0-9_]+) = (\d+),$`).FindAllStringSubmatch(string(got), -1)
	ps := pmu.Presets()
	if len(enum) < len(ps) {
		t.Fatalf("%d enum entries", len(enum))
	}
	for i, p := range ps {
		if enum[i][1] != p.Name || enum[i][2] != strconv.Itoa(int(p.ID)) {
			t.Errorf("enum %v, want %s = %d", enum[i][1:], p.Name, p.ID)
		}
	}
	ev := regexp.MustCompile(`\{ \.type = 0x([0-9a-f]+), \.flags = 0x([0-9a-f]+), \.config = 0x([0-9a-f]+)ULL, \.pmu = ("([a-z0-9_]+)"|0) \}`).FindAllStringSubmatch(string(got), -1)
	if len(ev) != pmu.NumPresets*pmu.NumVendors {
		t.Fatalf("%d events in the table", len(ev))
	}
	for i, p := range ps {
		for v := pmu.Vendor(0); v < pmu.NumVendors; v++ {
			m, _ := pmu.MappingFor(v, p.ID)
			e := ev[i*pmu.NumVendors+int(v)]
			typ, _ := strconv.ParseUint(e[1], 16, 32)
			fl, _ := strconv.ParseUint(e[2], 16, 32)
			cfg, _ := strconv.ParseUint(e[3], 16, 64)
			name := e[5]
			if !m.Available() {
				name = m.Event.PMU
			}
			if uint32(typ) != m.Event.Type || pmu.Flags(fl) != m.Flags || cfg != m.Event.Config || name != m.Event.PMU {
				t.Errorf("%s/%v: header %v, Go %+v", p.Name, v, e[1:], m)
			}
		}
	}
}
