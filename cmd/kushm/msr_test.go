package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestMSRThisMachine(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"msr", "-o", "json", "--interval", "20ms"}, &out); err != nil {
		t.Fatal(err)
	}
	var got msrOutput
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(got.Entries) != 16 {
		t.Fatalf("%d entries", len(got.Entries))
	}
	for _, e := range got.Entries {
		if !e.Readable && e.Reason == "" {
			t.Errorf("%s unreadable without a reason", e.Name)
		}
	}
	tsc := got.Entries[0]
	if !tsc.Readable {
		t.Skipf("TSC not readable here: %s", tsc.Reason)
	}
	if tsc.Rate == nil || *tsc.Rate < 1e8 || got.Derived["tsc_hz"] < 1e8 {
		t.Errorf("TSC rate %v, derived %v", tsc.Rate, got.Derived)
	}
}

func TestMSRFixture(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"--root", "../../msr/testdata/intel-server", "msr", "--interval", "0", "-o", "json"}, &out); err != nil {
		t.Fatal(err)
	}
	var got msrOutput
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	pkg := got.Entries[8]
	if !pkg.Readable || pkg.Source != "powercap" || pkg.Value < 123.4 || pkg.Value > 123.5 {
		t.Errorf("package energy %+v", pkg)
	}
	out.Reset()
	if err := run([]string{"--root", "../../msr/testdata/vm-nopmu", "msr", "--interval", "0"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "MPERF") || !strings.Contains(out.String(), "no mperf event (it offers: tsc)") {
		t.Errorf("table:\n%s", out.String())
	}
}
