package provider

import (
	"os"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	line := "1234 (my (odd) comm) S 1 1234 1234 0 -1 4194560 1500 0 7 0 250 50 0 0 20 0 1 0 98765 1000000 200 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	ps, err := parseProcStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if ps.Comm != "my (odd) comm" || ps.MinFlt != 1500 || ps.MajFlt != 7 || ps.UTime != 250 || ps.STime != 50 || ps.StartTime != 98765 {
		t.Fatalf("parsed %+v", ps)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2", "1 (x) S 1 1 1 0 -1 0 z 0 0 0 0 0 0 0 0 0 0 0 0"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// This process's own stat parses.
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Skip("no /proc:", err)
	}
	if _, err := parseProcStat(b); err != nil {
		t.Fatalf("/proc/self/stat: %v", err)
	}
}

func TestCgroup(t *testing.T) {
	cg := parseCgroupV2([]byte("12:cpu:/x\n0::/system.slice/a.service\n"))
	if cg != "/system.slice/a.service" {
		t.Fatalf("cgroup %q", cg)
	}
	if !inCgroup(cg, "/system.slice") || inCgroup(cg, "/system.sl") || !inCgroup(cg, "/") || !inCgroup(cg, cg) {
		t.Fatal("inCgroup")
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("1 (a) S 1 1 1 0 -1 0 5 0 6 0 7 8 0 0 20 0 1 0 9 0 0"))
	f.Add([]byte("1 ((() S"))
	f.Add([]byte(")("))
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, err := parseProcStat(b)
		if err == nil && len(ps.Comm) > 64 {
			t.Fatal("long comm accepted")
		}
		_ = parseCgroupV2(b)
	})
}
