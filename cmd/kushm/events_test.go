package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestEventsJSON(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"events", "-o", "json"}, &out); err != nil {
		t.Fatal(err)
	}
	var got eventsOutput
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(got.Presets) != 15 {
		t.Fatalf("%d presets", len(got.Presets))
	}
	for _, p := range got.Presets[11:] {
		if !p.Available {
			t.Errorf("software preset %s unavailable: %s", p.Name, p.Reason)
		}
	}
	for _, p := range got.Presets {
		if !p.Available && p.Reason == "" {
			t.Errorf("%s unavailable without a reason", p.Name)
		}
	}
}

func TestEventsFixtureTable(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"--root", "../../pmu/testdata/vm-nopmu", "events", "--static"}, &out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"PAPI_TOT_CYC         no     not available on this machine, because the kernel has no hardware PMU for this CPU",
		"SW_PAGE_FAULTS       yes",
		"memory-controller traffic: not available on this machine, because there are no uncore_imc_*",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	out.Reset()
	if err := run([]string{"--root", "../../pmu/testdata/intel-server", "events", "--static", "-o", "json"}, &out); err != nil {
		t.Fatal(err)
	}
	var got eventsOutput
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if !got.Memory.Available || len(got.Memory.Units) != 4 || !got.Presets[0].Available {
		t.Errorf("Intel server fixture: %+v", got.Memory)
	}
	if err := run([]string{"events", "-o", "yaml"}, &out); err == nil {
		t.Error("unknown output format accepted")
	}
}
