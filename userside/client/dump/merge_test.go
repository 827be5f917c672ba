package dump

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/sysstat"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
)

const testSlots = 4

// syscallRegion builds a region whose "syscalls" table has one slot per
// CPU (as the kernel module lays it out), with the well-known schema, and
// fills it with random per-CPU statistics; it returns the slots of each
// key.
func syscallRegion(t *testing.T) (*shm.Region, map[uint64][]abi.SyscallStat) {
	t.Helper()
	cols, err := abi.Columns(abi.SecNameSyscalls, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := rcuhash.Spec(abi.SecNameSyscalls, rcuhash.Geometry{
		Capacity: 64, NSlots: testSlots, ValueSize: abi.SyscallSlotSize,
	}, cols)
	if err != nil {
		t.Fatal(err)
	}
	r, err := shm.Create(filepath.Join(t.TempDir(), "region"), shm.Layout{NCPUs: testSlots, ProducerKind: abi.ProducerApp,
		ProducerName: "mergetest", HeartbeatPeriod: time.Second, Sections: []shm.SectionSpec{spec}}, shm.CreateOptions{GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	w, err := rcuhash.OpenWriter(r, abi.SecNameSyscalls)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(10, 12))
	want := map[uint64][]abi.SyscallStat{}
	for nr := uint64(0); nr < 20; nr++ {
		slots := make([]abi.SyscallStat, testSlots)
		words := make([][]uint64, testSlots)
		for j := range slots {
			words[j] = make([]uint64, abi.SyscallSlotSize/8)
			if nr%5 == 0 && j%2 == 1 {
				continue // CPUs that never ran this syscall
			}
			// Different CPUs see different latency ranges, so the
			// means differ and the cross term matters.
			base := uint64(100 + 1000*j + rng.IntN(500))
			var s sysstat.Slot
			for k := 0; k < 1+rng.IntN(200); k++ {
				s.Record(base+uint64(rng.IntN(int(base))), rng.IntN(50) == 0, abi.MaxDecayShift)
			}
			slots[j] = s.Stat
			b := make([]byte, abi.SyscallSlotSize)
			sysstat.EncodeSlot(b, &s)
			for i := range words[j] {
				words[j][i] = binary.LittleEndian.Uint64(b[8*i:])
			}
		}
		if err := w.Insert(nr, nil, make([]byte, abi.SyscallSlotSize)); err != nil {
			t.Fatal(err)
		}
		for j := range slots {
			if err := w.UpdateWords(nr, j, words[j]); err != nil {
				t.Fatal(err)
			}
		}
		want[nr] = slots
	}
	return r, want
}

// checkMerged compares the decoded statistics of each key with
// sysstat.Merge of its slots: count, mean, min, max, σ, m2, sum,
// outliers, last.
func checkMerged(got map[uint64]map[string]uint64, want map[uint64][]abi.SyscallStat) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d entries decoded, want %d", len(got), len(want))
	}
	for nr, slots := range want {
		m := sysstat.Merge(slots)
		g := got[nr]
		sigma := uint64(0)
		if g["count"] != 0 {
			sigma = sysstat.ISqrt(g["m2"] / g["count"])
		}
		for _, f := range []struct {
			name      string
			got, want uint64
		}{
			{"count", g["count"], m.Count}, {"mean_ns", g["mean_ns"], m.MeanNs}, {"min_ns", g["min_ns"], m.MinNs},
			{"max_ns", g["max_ns"], m.MaxNs}, {"σ", sigma, sysstat.StdDev(m)}, {"m2", g["m2"], m.M2},
			{"sum_ns", g["sum_ns"], m.SumNs}, {"outliers", g["outliers"], m.Outliers}, {"last_ns", g["last_ns"], m.LastNs},
			{"total", g["total"], m.Count}, {"hist", g["hist"], m.Count}, // no decay here: total = window = count
		} {
			if f.got != f.want {
				return fmt.Errorf("nr %d: %s = %d, sysstat.Merge says %d", nr, f.name, f.got, f.want)
			}
		}
	}
	return nil
}

// parseDump reads the syscalls entries back from a dump listing.
func parseDump(t *testing.T, out string) map[uint64]map[string]uint64 {
	t.Helper()
	got := map[uint64]map[string]uint64{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "nr=") {
			continue
		}
		vals := map[string]uint64{}
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			if k == "hist" {
				// "index:count,…": the total of its counts.
				var n uint64
				for _, e := range strings.Split(v, ",") {
					_, c, _ := strings.Cut(e, ":")
					x, _ := strconv.ParseUint(c, 10, 64)
					n += x
				}
				vals[k] = n
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				t.Fatalf("dump line %q: %s: %v", line, kv, err)
			}
			vals[k] = n
		}
		got[vals["nr"]] = vals
	}
	return got
}

// TestDumpMergesSyscallSlots: dump's generic merge of a multi-slot
// syscall table (no code for the section: only the schema's merge rules)
// gives exactly sysstat.Merge's count, mean, min, max and σ.
func TestDumpMergesSyscallSlots(t *testing.T) {
	r, want := syscallRegion(t)
	var buf bytes.Buffer
	if err := Dump(r, &buf, Options{MaxEntries: 100}); err != nil {
		t.Fatal(err)
	}
	if err := checkMerged(parseDump(t, buf.String()), want); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
}

// The old decoder summed every 8-byte word over the slots: the same
// check must reject it, or the test above proves nothing.
func TestSumOfWordsFailsTheMergeCheck(t *testing.T) {
	r, want := syscallRegion(t)
	tab, err := rcuhash.Open(r, abi.SecNameSyscalls)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"count", "mean_ns", "m2", "max_ns", "min_ns", "sum_ns", "outliers", "last_ns"}
	got := map[uint64]map[string]uint64{}
	tab.Range(func(e *rcuhash.Entry) bool {
		vals := map[string]uint64{}
		for j := 0; j < tab.NSlots(); j++ {
			for w, n := range names {
				vals[n] += binary.LittleEndian.Uint64(e.Slots[j*tab.ValueSize()+8*w:])
			}
		}
		got[e.Key] = vals
		return true
	})
	if err := checkMerged(got, want); err == nil {
		t.Fatal("summing every word passed the merge check")
	} else {
		t.Logf("sum of words rejected as it should be: %v", err)
	}
}

func u64s(vs ...uint64) []byte {
	b := make([]byte, 8*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint64(b[8*i:], v)
	}
	return b
}

// TestMergeRules: each rule on a three-slot value, plus the fallbacks.
func TestMergeRules(t *testing.T) {
	col := func(name string, off uint32, typ uint16, kind, merge uint8) shm.Column {
		size := uint32(8)
		if typ == abi.ColU32 {
			size = 4
		}
		return shm.Column{Name: name, Offset: off, Type: typ, Kind: kind, Merge: merge, Size: size}
	}
	cols := []shm.Column{
		col("sum", 0, abi.ColU64, abi.ColCounter, abi.MergeSum),
		col("min", 8, abi.ColU64, abi.ColGauge, abi.MergeMin),
		col("max", 16, abi.ColU64, abi.ColGauge, abi.MergeMax),
		col("last", 24, abi.ColU64, abi.ColGauge, abi.MergeLast),
		col("none", 32, abi.ColU64, abi.ColGauge, abi.MergeNone),
		col("smin", 40, abi.ColS64, abi.ColGauge, abi.MergeMin),
		col("old_counter", 48, abi.ColU64, abi.ColCounter, abi.MergeUnspecified),
		col("old_gauge", 56, abi.ColU64, abi.ColGauge, abi.MergeUnspecified),
		col("u32sum", 64, abi.ColU32, abi.ColCounter, abi.MergeSum),
		col("future", 72, abi.ColU64, abi.ColGauge, 0x0e),
		col("key", 0, abi.ColU64, abi.ColKey, abi.MergeNone),
	}
	neg := uint64(1<<64 - 5) // -5 as s64
	slots := bytes.Join([][]byte{
		u64s(1, 7, 7, 10, 1, 3, 1, 1, 1<<32-1, 0),
		u64s(1<<64-1, 3, 9, 20, 2, neg, 2, 2, 5, 0),
		u64s(5, 5, 1, 30, 3, 0, 3, 3, 0, 0),
	}, nil)
	out := make([]byte, 80)
	ok := Merge(cols, slots, 3, 80, out)
	le := binary.LittleEndian
	for i, want := range []struct {
		ok bool
		v  uint64
	}{{true, 1<<64 - 1}, {true, 3}, {true, 9}, {true, 30}, {false, 0}, {true, neg}, {true, 6}, {false, 0}, {true, 1<<32 - 1}, {false, 0}, {false, 0}} {
		c := cols[i]
		v := le.Uint64(out[c.Offset:])
		if c.Type == abi.ColU32 {
			v = uint64(le.Uint32(out[c.Offset:]))
		}
		if ok[i] != want.ok || (ok[i] && v != want.v) {
			t.Errorf("%s: merged %d (ok %v), want %d (ok %v)", c.Name, v, ok[i], want.v, want.ok)
		}
	}
	// One slot: every value column is that slot's value, "none" too.
	ok = Merge(cols, slots[:80], 1, 80, out)
	if !ok[4] || le.Uint64(out[32:]) != 1 || !ok[7] {
		t.Errorf("single slot: none/old gauge not taken as is: %v", ok)
	}
	// Bad geometry: nothing merged, nothing read out of bounds.
	ok = Merge(cols, slots[:100], 3, 80, out)
	for i := range ok {
		if ok[i] {
			t.Fatalf("merged %s from a short buffer", cols[i].Name)
		}
	}
}

// FuzzMerge: columns and slots straight from hostile bytes (any offset,
// size, type, kind, rule and group; any slot count and value size)
// never make Merge read or write out of bounds or panic, and a column it
// reports merged fits in the value.
func FuzzMerge(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 2, 8, 0, 8, 0, 0, 0, 1, 1, 6, 8}, []byte("0123456789abcdef0123456789abcdef"), uint8(2), uint8(16))
	f.Add([]byte{8, 0, 0, 0, 1, 2, 0x19, 0, 8, 0, 0, 0, 1, 1, 0x16, 8}, u64s(3, 300, 4, 400), uint8(2), uint8(16))
	f.Fuzz(func(t *testing.T, colBytes, slots []byte, nslots, vsize uint8) {
		var cols []shm.Column
		for i := 0; i+8 <= len(colBytes) && len(cols) < 32; i += 8 {
			b := colBytes[i:]
			cols = append(cols, shm.Column{
				Name: fmt.Sprint(i), Offset: uint32(b[0]) | uint32(b[1])<<8, Type: uint16(b[4] % 6),
				Kind: b[5] % 7, Merge: b[6], Size: uint32(b[7]),
			})
		}
		out := make([]byte, int(vsize))
		ok := Merge(cols, slots, int(nslots), int(vsize), out)
		if len(ok) != len(cols) {
			t.Fatalf("%d results for %d columns", len(ok), len(cols))
		}
		for i, c := range cols {
			if ok[i] && uint64(c.Offset)+uint64(c.Size) > uint64(vsize) {
				t.Fatalf("column %+v merged outside a %d-byte value", c, vsize)
			}
		}
	})
}

// TestMergeFromTheDoc: a Python reader written from
// docs/region-format.md §4.1 alone (testdata/merge.py) merges random
// multi-slot syscall statistics, with huge values to reach the
// saturating and 128-bit paths, exactly as dump.Merge does: the page is
// enough to write a compatible reader.
func TestMergeFromTheDoc(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed (.ci/packages.txt lists it)")
	}
	cols, err := abi.Columns(abi.SecNameSyscalls, nil)
	if err != nil {
		t.Fatal(err)
	}
	var scols []shm.Column
	for _, c := range cols {
		if c.Type != abi.ColU64 { // the u64 columns: what §4.1's arithmetic covers
			continue
		}
		scols = append(scols, shm.Column{Name: c.Name, Offset: c.Offset, Type: c.Type, Kind: c.Kind, Merge: c.Merge, Size: c.Size})
	}
	vsize := abi.SyscallSlotSize
	rng := rand.New(rand.NewPCG(3, 4))
	var in bytes.Buffer
	var want []string
	for trial := 0; trial < 300; trial++ {
		nslots := 1 + rng.IntN(6)
		slots := make([]byte, nslots*vsize)
		for j := 0; j < nslots; j++ {
			var s abi.SyscallStat
			switch rng.IntN(4) {
			case 0: // empty
			case 1: // huge: saturation, 128-bit products
				s = abi.SyscallStat{Count: rng.Uint64() >> rng.IntN(64), MeanNs: rng.Uint64(), M2: rng.Uint64(),
					MaxNs: rng.Uint64(), MinNs: rng.Uint64(), SumNs: rng.Uint64(), Outliers: rng.Uint64(), LastNs: rng.Uint64()}
			default:
				for k := 0; k < 1+rng.IntN(50); k++ {
					sysstat.Add(&s, uint64(100+rng.IntN(100000*(j+1))), rng.IntN(10) == 0)
				}
			}
			w := s.Words()
			for i, v := range w {
				binary.LittleEndian.PutUint64(slots[j*vsize+8*i:], v)
			}
			// The slot's other u64 columns (the histogram's total and
			// decays: group 1, sums).
			for _, c := range scols {
				if c.Offset >= uint32(8*len(w)) {
					binary.LittleEndian.PutUint64(slots[j*vsize+int(c.Offset):], rng.Uint64()>>rng.IntN(64))
				}
			}
		}
		fmt.Fprintf(&in, "%d %d\n", nslots, vsize)
		for _, c := range scols {
			fmt.Fprintf(&in, "col %d %d %d %d %d\n", c.Offset, c.Size, c.Type, c.Kind, c.Merge)
		}
		for j := 0; j < nslots; j++ {
			fmt.Fprintf(&in, "slot %x\n", slots[j*vsize:(j+1)*vsize])
		}
		in.WriteString("end\n")
		out := make([]byte, vsize)
		ok := Merge(scols, slots, nslots, vsize, out)
		for i, c := range scols {
			if ok[i] {
				want = append(want, fmt.Sprintf("%d %d", c.Offset, binary.LittleEndian.Uint64(out[c.Offset:])))
			} else {
				want = append(want, fmt.Sprintf("%d -", c.Offset))
			}
		}
	}
	cmd := exec.Command(py, "testdata/merge.py")
	cmd.Stdin = &in
	o, err := cmd.Output()
	if err != nil {
		t.Fatalf("merge.py: %v", err)
	}
	got := strings.Split(strings.TrimSpace(string(o)), "\n")
	if len(got) != len(want) {
		t.Fatalf("merge.py gave %d values, dump.Merge %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("value %d (trial %d): merge.py %q, dump.Merge %q", i, i/len(scols), got[i], want[i])
		}
	}
}
