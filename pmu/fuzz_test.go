package pmu

import (
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
	})
}
