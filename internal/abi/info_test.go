package abi

import (
	"reflect"
	"strings"
	"testing"
)

func TestInfoRoundTrip(t *testing.T) {
	in := []InfoEntry{
		{What: "PAPI_L3_TCM", Source: InfoSourcePerf, Kind: InfoKindNotSupported, Errno: 2, Cause: "the kernel has no hardware PMU for this CPU (ENOENT)"},
		{What: "TSC", Source: InfoSourceConfig, Kind: InfoKindNotAvailable, Cause: "the module parameter msrs leaves it out"},
	}
	b := AppendInfoNote(nil, "kushm-serve: 2 CPUs")
	for _, e := range in {
		b = AppendInfoEntry(b, e)
	}
	b = append(b, "a line of another kind\n"+InfoUnavailable+"\tX\tperf\tpermission\tnan\tbad errno\n\x00garbage after the NUL"...)
	got, notes := ParseInfo(b)
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("entries\n got %+v\nwant %+v", got, in)
	}
	if !reflect.DeepEqual(notes, []string{"kushm-serve: 2 CPUs"}) {
		t.Fatalf("notes %q", notes)
	}
	// The exact bytes, as a C or Python reader finds them (region-format.md §9).
	want := "unavailable\tTSC\tconfig\tnot-available\t0\tthe module parameter msrs leaves it out\n"
	if s := string(AppendInfoEntry(nil, in[1])); s != want {
		t.Fatalf("line %q, want %q", s, want)
	}
}

// A field with separators cannot split or add lines.
func TestInfoFieldSanitised(t *testing.T) {
	b := AppendInfoEntry(nil, InfoEntry{What: "A\tB", Source: "perf\n", Kind: InfoKindPermission, Errno: 13, Cause: "x\ty\nunavailable\tZ\tperf\tpermission\t1\tforged"})
	if strings.Count(string(b), "\n") != 1 {
		t.Fatalf("%q holds more than one line", b)
	}
	got, _ := ParseInfo(b)
	if len(got) != 1 || got[0].What != "A B" || got[0].Errno != 13 || !strings.HasPrefix(got[0].Cause, "x y unavailable") {
		t.Fatalf("%+v", got)
	}
}

func FuzzParseInfo(f *testing.F) {
	f.Add([]byte("# n\nunavailable\tX\tperf\tpermission\t13\twhy\n"))
	f.Add([]byte("unavailable\t\t\t\t\t\x00"))
	f.Add([]byte("unavailable\tX\ty\tz\t99999999999\tc"))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, _ := ParseInfo(b)
		for _, e := range es {
			if e.What == "" {
				t.Fatal("entry without what")
			}
			// What was parsed encodes back to a line that parses the same.
			again, _ := ParseInfo(AppendInfoEntry(nil, e))
			if len(again) != 1 || again[0] != e {
				t.Fatalf("%+v does not round-trip: %+v", e, again)
			}
		}
	})
}
