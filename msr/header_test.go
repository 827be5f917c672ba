package msr_test

import (
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/kushm/kushm/msr"
	"github.com/kushm/kushm/tools/kgen"
)

const msrHeader = "../kmod/include/generated/kushm_msr.h"

func TestGeneratedHeader(t *testing.T) {
	got, err := os.ReadFile(msrHeader)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(kgen.MSRHeader()) {
		t.Fatalf("%s is stale: run go generate ./msr", msrHeader)
	}
	if !regexp.MustCompile(`^/\* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 \*/\n/\* Code generated .* DO NOT EDIT\. \*/\n`).Match(got) {
		t.Error("header does not start with the SPDX and Code generated lines")
	}
	addr := map[string]uint64{}
	for _, m := range regexp.MustCompile(`(?m)^#define KUSHM_MSR_ADDR_([A-Z0-9_]+) 0x([0-9a-f]+)U$`).FindAllStringSubmatch(string(got), -1) {
		addr[m[1]], _ = strconv.ParseUint(m[2], 16, 32)
	}
	ids := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^\tKUSHM_MSR_([A-Z0-9_]+) = (\d+),$`).FindAllStringSubmatch(string(got), -1) {
		ids[m[1]], _ = strconv.Atoi(m[2])
	}
	allow := map[uint64]string{}
	for _, m := range regexp.MustCompile(`\{ \.addr = 0x([0-9a-f]+)U, \.write_mask = 0x([0-9a-f]+)ULL \}`).FindAllStringSubmatch(string(got), -1) {
		a, _ := strconv.ParseUint(m[1], 16, 32)
		allow[a] = m[2]
	}
	width := map[string]string{}
	for _, m := range regexp.MustCompile(`\[KUSHM_MSR_([A-Z0-9_]+)\] = \{.* \.width = (\d+) \}`).FindAllStringSubmatch(string(got), -1) {
		width[m[1]] = m[2]
	}
	cat := msr.Catalogue()
	if len(allow) != len(cat) || len(width) != len(cat) {
		t.Fatalf("header has %d allowlist and %d catalogue entries, Go %d", len(allow), len(width), len(cat))
	}
	for _, e := range cat {
		if id, ok := ids[e.Name]; !ok || id != int(e.ID) {
			t.Errorf("%s: header id %d", e.Name, id)
		}
		if addr[e.Name] != uint64(e.Addr) {
			t.Errorf("%s: header address %#x, Go %#x", e.Name, addr[e.Name], e.Addr)
		}
		if m, ok := allow[uint64(e.Addr)]; !ok || m != "0000000000000000" {
			t.Errorf("%s: allowlist write mask %q, want 0", e.Name, m)
		}
		if width[e.Name] != strconv.Itoa(int(e.Width)) {
			t.Errorf("%s: width %s, Go %d", e.Name, width[e.Name], e.Width)
		}
	}
}
