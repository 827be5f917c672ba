package pmu

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

func FuzzParseCPUList(f *testing.F) {
	for _, s := range []string{"0", "0-3", "0-3,8,10-11", "", "0,2", "5-4", "1-", "-1", "0-65536"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cpus, err := ParseCPUList(s)
		if err != nil {
			return
		}
		// Every listed CPU is non-negative and the list reformats to
		// something that parses to the same CPUs.
		var parts []string
		for _, c := range cpus {
			if c < 0 {
				t.Fatalf("%q: negative cpu %d", s, c)
			}
			parts = append(parts, strconv.Itoa(c))
		}
		again, err := ParseCPUList(strings.Join(parts, ","))
		if err != nil || len(again) != len(cpus) {
			t.Fatalf("%q: reformatted list does not parse back: %v", s, err)
		}
		// FormatCPUList's ranges parse back to the same CPUs (a list
		// the kernel writes is ascending).
		if slices.IsSorted(cpus) && len(slices.Compact(slices.Clone(cpus))) == len(cpus) {
			f := FormatCPUList(cpus)
			back, err := ParseCPUList(f)
			if err != nil || !slices.Equal(back, cpus) {
				t.Fatalf("%q: FormatCPUList %q parses back to %v, %v", s, f, back, err)
			}
		}
	})
}

func TestFormatCPUList(t *testing.T) {
	for _, c := range []struct {
		cpus []int
		want string
	}{
		{nil, ""},
		{[]int{1}, "1"},
		{[]int{0, 1, 2, 3, 8, 10, 11}, "0-3,8,10-11"},
		{[]int{1, 3, 5}, "1,3,5"},
	} {
		if got := FormatCPUList(c.cpus); got != c.want {
			t.Errorf("FormatCPUList(%v) = %q, want %q", c.cpus, got, c.want)
		}
	}
}

func FuzzParseCPUInfo(f *testing.F) {
	f.Add("processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\nmodel name\t: Intel(R) Xeon(R)\n\nprocessor\t: 1\nvendor_id\t: AuthenticAMD\n")
	f.Add("processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n")
	f.Add("vendor_id:HygonGenuine\ncpu family: 24\n")
	f.Fuzz(func(t *testing.T, s string) {
		c := ParseCPUInfo(strings.NewReader(s))
		if strings.Contains(c.VendorID, "\n") || strings.Contains(c.ModelName, "\n") {
			t.Fatalf("%q: field spans lines: %+v", s, c)
		}
		_ = VendorFromID(c.VendorID)
	})
}

func TestParseCPUInfoFirstBlock(t *testing.T) {
	c := ParseCPUInfo(strings.NewReader("processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\nmodel name\t: Xeon\n\nprocessor\t: 1\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n"))
	if c != (CPUInfo{"GenuineIntel", 6, 85, "Xeon"}) || VendorFromID(c.VendorID) != VendorIntel {
		t.Errorf("%+v", c)
	}
}
