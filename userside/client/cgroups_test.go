package client

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/pmu"
)

// multiplexed is a fixture of a PMU with fewer counters than events:
// cycles and instructions in group 0, counted the whole time; cache
// misses alone in group 1, on a counter a quarter of the time; page
// faults exact.
func multiplexed() Cgroup {
	g := Cgroup{ID: 42, Path: "/system.slice/foo.service"}
	set := func(id pmu.PresetID, v uint64, grp int) {
		g.Valid |= 1 << id
		g.Counters[id] = v
		g.Groups |= uint64(grp+1) << (4 * id)
	}
	set(pmu.PAPI_TOT_CYC, 4000, 0)
	set(pmu.PAPI_TOT_INS, 2000, 0)
	set(pmu.PAPI_L3_TCM, 50, 1)
	set(pmu.SW_PAGE_FAULTS, 7, -1)
	g.Enabled[0], g.Running[0] = 1000, 1000
	g.Enabled[1], g.Running[1] = 1000, 250
	return g
}

func TestCgroupMultiplexHonest(t *testing.T) {
	g := multiplexed()
	if v, f, ok := g.Count(int(pmu.PAPI_L3_TCM)); !ok || v != 200 || f != 0.25 {
		t.Errorf("cache misses: %d %v %v, want 200 scaled from a quarter", v, f, ok)
	}
	if v, f, ok := g.Count(int(pmu.SW_PAGE_FAULTS)); !ok || v != 7 || f != 1 {
		t.Errorf("faults: %d %v %v", v, f, ok)
	}
	if r, err := g.Ratio(int(pmu.PAPI_TOT_INS), int(pmu.PAPI_TOT_CYC)); err != nil || r != 0.5 {
		t.Errorf("IPC of one group: %v %v", r, err)
	}
	// MPKI mixes two groups: refused, not fabricated.
	if _, err := g.Ratio(int(pmu.PAPI_L3_TCM), int(pmu.PAPI_TOT_INS)); err == nil || !strings.Contains(err.Error(), "not counted as one group") {
		t.Errorf("cross-group ratio: %v", err)
	}
	if _, _, ok := g.Count(int(pmu.PAPI_BR_MSP)); ok {
		t.Error("unmeasured counter available")
	}
	// A group field out of range (corrupt region) is n/a, not a panic.
	bad := g
	bad.Groups |= 0xf << (4 * pmu.PAPI_TOT_CYC)
	if _, _, ok := bad.Count(int(pmu.PAPI_TOT_CYC)); ok {
		t.Error("corrupt group accepted")
	}
	// A group that never ran while enabled: n/a.
	never := g
	never.Running[1] = 0
	if _, _, ok := never.Count(int(pmu.PAPI_L3_TCM)); ok {
		t.Error("a never-scheduled group gave a count")
	}
}

func TestCgroupDelta(t *testing.T) {
	a := multiplexed()
	b := multiplexed()
	for i := range b.Counters {
		b.Counters[i] *= 3
	}
	b.Counters[abi.ProcCounterRuntime] = 500e6
	b.Valid |= 1 << abi.ProcCounterRuntime
	b.Enabled[1], b.Running[1] = 3000, 750
	b.Enabled[0], b.Running[0] = 3000, 3000
	rows := CgroupDelta([]Cgroup{a}, []Cgroup{b}, time.Second)
	if len(rows) != 1 {
		t.Fatal(rows)
	}
	s := rows[0]
	if s.Cgroup != "/system.slice/foo.service" || s.CgroupID != 42 {
		t.Errorf("names %q %d", s.Cgroup, s.CgroupID)
	}
	cm, ok := s.Counter(pmu.PAPI_L3_TCM)
	if !ok || cm.Total != 400 || !cm.Scaled || cm.Fraction != 0.25 {
		t.Errorf("cache misses over the interval %+v", cm)
	}
	if s.CPUPercent == nil || *s.CPUPercent != 50 {
		t.Errorf("cpu %v", s.CPUPercent)
	}
	if r := s.Ratios["ipc"]; r.Value == nil || *r.Value != 0.5 || r.Scaled {
		t.Errorf("ipc %+v", r)
	}
	if r := s.Ratios["mpki"]; r.Value != nil || r.Note == "" {
		t.Errorf("mpki across groups must be refused: %+v", r)
	}
	// A counter that went backwards (producer restart) is dropped.
	rows = CgroupDelta([]Cgroup{b}, []Cgroup{a}, time.Second)
	if _, ok := rows[0].Counter(pmu.PAPI_TOT_CYC); ok {
		t.Error("backwards counter kept")
	}
}

func TestDecodeCgroupSlots(t *testing.T) {
	le := binary.LittleEndian
	data := make([]byte, cgDataSize)
	le.PutUint64(data, 1<<pmu.SW_PAGE_FAULTS)
	le.PutUint64(data[cgOffGroups:], 1<<(4*pmu.SW_PAGE_FAULTS))
	val := make([]byte, 2*cgValueSize)
	for j := 0; j < 2; j++ {
		s := val[j*cgValueSize:]
		le.PutUint64(s[8*pmu.SW_PAGE_FAULTS:], uint64(10+j))
		le.PutUint64(s[cgOffEnabled:], 100)
		le.PutUint64(s[cgOffRunning:], 100)
	}
	g := decodeCgroup(7, data, val, 2, cgValueSize)
	if v, f, ok := g.Count(int(pmu.SW_PAGE_FAULTS)); !ok || v != 21 || f != 1 {
		t.Errorf("summed slots: %d %v %v", v, f, ok)
	}
	// A value slot shorter than the ABI's: nothing trusted.
	if g := decodeCgroup(7, data, val[:8], 1, 8); g.Valid != 0 {
		t.Error("short slot trusted")
	}
	if CgroupName(abi.CgroupKeyIdle, nil) != CgroupIdleName || CgroupName(abi.CgroupKeyOverflow, nil) != CgroupOverflowName || CgroupName(9, nil) != "?9" {
		t.Error("names of the special rows")
	}
}

// FuzzDecodeCgroup: any node data and slots, any geometry, never a panic;
// counts and ratios stay answerable (or n/a).
func FuzzDecodeCgroup(f *testing.F) {
	f.Add(make([]byte, 16), make([]byte, 2*192), 2, 192)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, make([]byte, 192), 1, 192)
	f.Add([]byte{1}, []byte{1, 2, 3}, 3, 8)
	f.Fuzz(func(t *testing.T, data, val []byte, nslots, vsize int) {
		if nslots < 0 || nslots > 64 || vsize < 0 || vsize > 4096 {
			return
		}
		g := decodeCgroup(1, data, val, nslots, vsize)
		for i := -1; i <= abi.CgroupCounters; i++ {
			if v, f, ok := g.Count(i); ok && (f <= 0 || f > 1) {
				t.Fatalf("counter %d: %d with fraction %v", i, v, f)
			}
		}
		g.Ratio(int(pmu.PAPI_TOT_INS), int(pmu.PAPI_TOT_CYC))
		g.Sub(Cgroup{})
		CgroupDelta([]Cgroup{g}, []Cgroup{g}, time.Second)
	})
}
