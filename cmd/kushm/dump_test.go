package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
)

// TestDump builds a region with sections no dump code knows about and
// checks that dump decodes them from the schema alone.
func TestDump(t *testing.T) {
	hs, err := rcuhash.Spec("widgets", rcuhash.Geometry{Capacity: 4, ValueSize: 16, DataSize: 8}, []shm.ColumnSpec{
		{Name: "id", Unit: "id", Type: abi.ColU64, Kind: abi.ColKey, Size: 8},
		{Name: "label", Unit: "text", Type: abi.ColChars, Kind: abi.ColLabel, Size: 8},
		{Name: "weight", Unit: "grams", Offset: 8, Type: abi.ColU64, Kind: abi.ColGauge, Size: 8},
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "region")
	r, err := shm.Create(path, shm.Layout{NCPUs: 2, ProducerKind: abi.ProducerApp, ProducerName: "dumptest",
		HeartbeatPeriod: time.Second, Sections: []shm.SectionSpec{
			atomicarr.Spec("gadgets", 2, 2, []shm.ColumnSpec{{Name: "spins", Unit: "count"}, {Name: "heat", Unit: "celsius", Kind: abi.ColGauge}}),
			hs, shm.TextSpec("info", "unavailable\tfrobnicator\tperf\tnot-supported\t0\ttest \x1b[31mred\n"), shm.ControlSpec(),
		}}, shm.CreateOptions{GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a, _ := atomicarr.Open(r, "gadgets")
	a.Update(1, 1, 0b01, []uint64{12345, 99})
	w, _ := rcuhash.OpenWriter(r, "widgets")
	w.Insert(77, []byte("bolt"), []byte{0, 0, 0, 0, 0, 0, 0, 0, 250})

	var out bytes.Buffer
	if err := run([]string{"dump", "--region", path}, &out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		`producer: dumptest (application`,
		`section "gadgets": atomicarr`,
		`cpu 1: spins=12345 heat=n/a`, // heat's valid bit is clear
		`section "widgets": rcuhash`,
		`id=77 label="bolt" weight=250`,
		"unavailable\tfrobnicator\tperf\tnot-supported\t0\ttest ?[31mred", // fields sanitised, TABs kept
		`section "control": control`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("dump lacks %q:\n%s", want, s)
		}
	}
	// A saved image decodes the same way.
	img := filepath.Join(t.TempDir(), "img")
	b, _ := os.ReadFile(path)
	os.WriteFile(img, b, 0o600)
	out.Reset()
	if err := run([]string{"dump", "--image", img}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `id=77 label="bolt" weight=250`) {
		t.Fatalf("image dump:\n%s", out.String())
	}
	// Garbage is refused with the cause.
	os.WriteFile(img, bytes.Repeat([]byte{0xAA}, 8192), 0o600)
	err = run([]string{"dump", "--image", img}, &out)
	if !errors.Is(err, shm.ErrBadMagic) {
		t.Fatalf("garbage image: %v", err)
	}
}

// TestDumpValidMask: value columns whose bit is clear in the node's
// valid-mask column print n/a, not 0.
func TestDumpValidMask(t *testing.T) {
	hs, err := rcuhash.Spec("procs", rcuhash.Geometry{Capacity: 4, ValueSize: 16, DataSize: 8}, []shm.ColumnSpec{
		{Name: "pid", Unit: "id", Type: abi.ColU64, Kind: abi.ColKey, Size: 8},
		{Name: "valid", Unit: "raw", Type: abi.ColU64, Kind: abi.ColValidMask, Size: 8},
		{Name: "faults", Unit: "count", Offset: 0, Type: abi.ColU64, Kind: abi.ColCounter, Size: 8, ID: 0},
		{Name: "cycles", Unit: "cycles", Offset: 8, Type: abi.ColU64, Kind: abi.ColCounter, Size: 8, ID: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "region")
	r, err := shm.Create(path, shm.Layout{NCPUs: 1, ProducerKind: abi.ProducerApp, ProducerName: "t",
		HeartbeatPeriod: time.Second, Sections: []shm.SectionSpec{hs}}, shm.CreateOptions{GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, _ := rcuhash.OpenWriter(r, "procs")
	w.Insert(7, []byte{0b01, 0, 0, 0, 0, 0, 0, 0}, []byte{42})
	var out bytes.Buffer
	if err := run([]string{"dump", "--region", path}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "pid=7 faults=42 cycles=n/a") {
		t.Fatalf("dump:\n%s", out.String())
	}
}
