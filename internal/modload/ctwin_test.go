package modload

// The C twin of rcuhash (kmod/kushm_rcuhash.c, built for userspace with
// kmod/test/kshim.h) checked against the Go implementation in both
// directions: C reads tables Go wrote, Go reads tables C wrote.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"math/rand/v2"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/sysstat"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
)

func buildUtest(t *testing.T) string {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler (cc): cannot build the C twin")
	}
	dir := "../../kmod"
	bin := filepath.Join(t.TempDir(), "utest")
	out, err := exec.Command(cc, "-O2", "-Wall", "-Wextra", "-Werror", "-std=gnu11", "-DKUSHM_USERSPACE",
		"-I"+dir+"/include", "-I"+dir+"/test", "-I"+dir, "-o", bin,
		dir+"/test/utest.c", dir+"/kushm_rcuhash.c").CombinedOutput()
	if err != nil {
		t.Fatalf("build utest: %v\n%s", err, out)
	}
	return bin
}

func TestCTwinReadsGoTable(t *testing.T) {
	bin := buildUtest(t)
	g := rcuhash.Geometry{Capacity: 64, NSlots: 2, ValueSize: 128, DataSize: 32}
	spec, err := rcuhash.Spec("t", g, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "region")
	r, err := shm.Create(path, shm.Layout{NCPUs: 2, ProducerKind: abi.ProducerApp, ProducerName: "ctwin",
		HeartbeatPeriod: time.Second, Sections: []shm.SectionSpec{spec}}, shm.CreateOptions{InlineControl: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tab, err := rcuhash.OpenWriter(r, "t")
	if err != nil {
		t.Fatal(err)
	}
	val := func(key uint64, j int) []byte {
		b := make([]byte, 128)
		for w := 0; w < 16; w++ {
			binary.LittleEndian.PutUint64(b[8*w:], key*1000+uint64(j)*100+uint64(w))
		}
		return b
	}
	var keys []string
	for key := uint64(1); key <= 40; key++ {
		k := key * 0x9e3779b97f4a7c15 // spread over buckets, collide some
		if err := tab.Insert(k, make([]byte, 32), val(k, 0)); err != nil {
			t.Fatal(err)
		}
		if err := tab.Update(k, 1, val(k, 1)); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, strconv.FormatUint(k, 10))
	}
	for key := uint64(5); key <= 40; key += 5 {
		if err := tab.Delete(key * 0x9e3779b97f4a7c15); err != nil {
			t.Fatal(err)
		}
	}
	keys = append(keys, "12345")
	s, _ := r.Section("t")
	b, _ := r.Bytes(s)
	img := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, append([]string{"read", img}, keys...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("utest read: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(keys) {
		t.Fatalf("utest printed %d lines for %d keys:\n%s", len(lines), len(keys), out)
	}
	dst := make([]byte, 128)
	for i, l := range lines {
		k, _ := strconv.ParseUint(keys[i], 10, 64)
		err := tab.Lookup(k, dst)
		var want string
		switch {
		case errors.Is(err, shm.ErrNotFound):
			want = fmt.Sprintf("%d -2", k) // -ENOENT
		case err != nil:
			t.Fatalf("Go lookup %d: %v", k, err)
		default:
			want = fmt.Sprintf("%d ok", k)
			for w := 0; w < 16; w++ {
				want += " " + strconv.FormatUint(binary.LittleEndian.Uint64(dst[8*w:]), 10)
			}
		}
		if l != want {
			t.Errorf("key %d: C %q, Go %q", k, l, want)
		}
	}
}

func TestGoReadsCTwinTable(t *testing.T) {
	bin := buildUtest(t)
	img := filepath.Join(t.TempDir(), "img")
	if out, err := exec.Command(bin, "write", img, "64", "2", "128", "32").CombinedOutput(); err != nil {
		t.Fatalf("utest write: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, (len(raw)+4095)/4096*4096) // 8-byte aligned
	copy(b, raw)
	tab, err := rcuhash.View("t", b)
	if err != nil {
		t.Fatalf("Go refuses the C table: %v", err)
	}
	if tab.Capacity() != 64 || tab.NSlots() != 2 || tab.ValueSize() != 128 || tab.DataSize() != 32 {
		t.Fatalf("geometry %d %d %d %d", tab.Capacity(), tab.NSlots(), tab.ValueSize(), tab.DataSize())
	}
	dst := make([]byte, 128)
	data := make([]byte, 32)
	for key := uint64(1); key <= 32; key++ {
		err := tab.Lookup(key, dst)
		if key%7 == 0 {
			if !errors.Is(err, shm.ErrNotFound) {
				t.Errorf("deleted key %d: %v", key, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("key %d: %v", key, err)
		}
		for w := uint64(0); w < 16; w++ {
			// Sum of slot 0 and slot 1.
			if got, want := binary.LittleEndian.Uint64(dst[8*w:]), 2*key*1000+100+2*w; got != want {
				t.Fatalf("key %d word %d = %d, want %d", key, w, got, want)
			}
		}
		want := key
		if key%5 == 0 { // kushm_htab_set_data replaced it (S1..S4)
			want = key + 100000
		}
		if err := tab.Read(key, data, nil); err != nil || binary.LittleEndian.Uint64(data) != want {
			t.Errorf("key %d data %x %v, want %d", key, data[:8], err, want)
		}
	}
	for i := uint64(0); i < 4; i++ {
		if err := tab.Lookup(5000+i, dst); err != nil {
			t.Errorf("reinserted key %d: %v", 5000+i, err)
		}
	}
	n := 0
	if skipped := tab.Range(func(*rcuhash.Entry) bool { n++; return true }); skipped != 0 || n != 64 {
		t.Errorf("Range saw %d live nodes (skipped %d), want the full 64", n, skipped)
	}
	if st := tab.Stats(); st.InsertFull != 1 {
		t.Errorf("stats %+v, want insert_full 1", st)
	}
}

// The C atomicarr twin and the Go package write rows the other reads.
func TestCTwinAtomicArr(t *testing.T) {
	bin := buildUtest(t)
	const rows, slots = 3, 5
	path := filepath.Join(t.TempDir(), "region")
	r, err := shm.Create(path, shm.Layout{NCPUs: rows, ProducerKind: abi.ProducerApp, ProducerName: "ctwin",
		HeartbeatPeriod: time.Second, Sections: []shm.SectionSpec{atomicarr.Spec("a", rows, slots, nil)}},
		shm.CreateOptions{InlineControl: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, err := r.Section("a")
	if err != nil {
		t.Fatal(err)
	}
	a, err := atomicarr.Open(r, "a")
	if err != nil {
		t.Fatal(err)
	}
	args := func(cmd string) []string {
		return []string{cmd, path, strconv.FormatUint(s.Offset, 10), strconv.Itoa(int(s.ElemSize)), strconv.Itoa(rows), strconv.Itoa(slots)}
	}
	// C writes (into the file Go has mapped shared), Go reads.
	if out, err := exec.Command(bin, args("arrwrite")...).CombinedOutput(); err != nil {
		t.Fatalf("utest arrwrite: %v\n%s", err, out)
	}
	for row := 0; row < rows; row++ {
		var snap atomicarr.Snapshot
		if err := a.Snapshot(row, &snap); err != nil {
			t.Fatal(err)
		}
		if snap.TimeNs != uint64(42+row) || snap.Valid != 0b11101 {
			t.Errorf("row %d: time %d valid %b", row, snap.TimeNs, snap.Valid)
		}
		for i := 0; i < slots; i++ {
			if snap.Vals[i] != uint64(row*1000+i) {
				t.Errorf("row %d slot %d = %d", row, i, snap.Vals[i])
			}
		}
	}
	// Go writes, C reads.
	for row := 0; row < rows; row++ {
		if err := a.Update(row, uint64(7+row), 0b10110, []uint64{1, 2, 3, 4, uint64(row)}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(bin, args("arrread")...).CombinedOutput()
	if err != nil {
		t.Fatalf("utest arrread: %v\n%s", err, out)
	}
	want := "0 7 22 1 2 3 4 0\n1 8 22 1 2 3 4 1\n2 9 22 1 2 3 4 2\n"
	if string(out) != want {
		t.Errorf("C read %q, want %q", out, want)
	}
}

// TestCMergeMatchesGo: the kernel's merge of per-CPU syscall slots
// (kushm_merge_syscall) gives exactly sysstat.Merge's numbers, on random
// slots and on the edge cases (one sample per slot, empty slots, huge
// values that saturate).
func TestCMergeMatchesGo(t *testing.T) {
	bin := buildUtest(t)
	rng := rand.New(rand.NewPCG(11, 12))
	var cases [][]abi.SyscallStat
	for i := 0; i < 500; i++ {
		slots := make([]abi.SyscallStat, 1+rng.IntN(8))
		for j := range slots {
			n := rng.IntN(4)
			if rng.IntN(2) == 0 {
				n = rng.IntN(300)
			}
			for k := 0; k < n; k++ {
				x := uint64(rng.IntN(100000))
				if rng.IntN(50) == 0 {
					x = rng.Uint64() >> rng.IntN(64)
				}
				sysstat.Add(&slots[j], x, rng.IntN(10) == 0)
			}
		}
		cases = append(cases, slots)
	}
	var in strings.Builder
	for _, slots := range cases {
		for _, s := range slots {
			fmt.Fprintf(&in, "%d %d %d %d %d %d %d %d ", s.Count, s.SumNs, s.MeanNs, s.M2, s.MaxNs, s.MinNs, s.Outliers, s.LastNs)
		}
		in.WriteString("\n")
	}
	cmd := exec.Command(bin, "merge")
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("utest merge: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(cases) {
		t.Fatalf("%d results for %d cases", len(lines), len(cases))
	}
	for i, slots := range cases {
		m := sysstat.Merge(slots)
		want := fmt.Sprintf("%d %d %d %d %d %d %d %d", m.Count, m.SumNs, m.MeanNs, m.M2, m.MaxNs, m.MinNs, m.Outliers, m.LastNs)
		if lines[i] != want {
			t.Fatalf("case %d: C merge %s, Go %s", i, lines[i], want)
		}
	}
}
