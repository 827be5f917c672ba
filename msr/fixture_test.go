//go:build linux

package msr

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// fakeMSR is a fixture /dev/cpu/N/msr: a real msr file cannot be a
// plain file, because MSR addresses are consecutive (0xE7, 0xE8) while
// each read takes 8 bytes at offset = address. The values come from the
// fixture's msr-values.txt ("cpu address value" lines); a missing address
// reads as EIO, like an rdmsr that faults.
type fakeMSR struct {
	vals  map[int]map[uint32]uint64
	opens int
	// tick[addr], when set, is added to addr's value after each read: a
	// counter that moves between two reads.
	tick map[uint32]uint64
}

func (f *fakeMSR) set(cpu int, addr uint32, v uint64) {
	if f.vals[cpu] == nil {
		f.vals[cpu] = map[uint32]uint64{}
	}
	f.vals[cpu][addr] = v
}

func (f *fakeMSR) open(path string) (msrFile, error) {
	var cpu int
	if _, err := fmt.Sscanf(filepath.Base(filepath.Dir(path)), "%d", &cpu); err != nil || f.vals[cpu] == nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
	}
	f.opens++
	return fakeFile{f, cpu}, nil
}

type fakeFile struct {
	f   *fakeMSR
	cpu int
}

func (ff fakeFile) Read(off int64, buf []byte) error {
	v, ok := ff.f.vals[ff.cpu][uint32(off)]
	if !ok {
		return &fs.PathError{Op: "pread", Path: "msr", Err: syscall.EIO}
	}
	binary.LittleEndian.PutUint64(buf, v)
	if d := ff.f.tick[uint32(off)]; d != 0 {
		ff.f.vals[ff.cpu][uint32(off)] = v + d
	}
	return nil
}

func (fakeFile) Close() error { return nil }

// fixture returns the root of testdata/<name> and options that read its
// msr-values.txt as /dev/cpu/N/msr.
func fixture(t *testing.T, name string) (*Options, *fakeMSR) {
	t.Helper()
	root := filepath.Join("testdata", name)
	fake := &fakeMSR{vals: map[int]map[uint32]uint64{}}
	o := &Options{Root: root}
	f, err := os.Open(filepath.Join(root, "msr-values.txt"))
	if os.IsNotExist(err) {
		return o, fake
	} else if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.SplitN(sc.Text(), "#", 2)[0])
		if len(fields) == 0 {
			continue
		}
		cpu, _ := strconv.Atoi(fields[0])
		addr, err1 := strconv.ParseUint(fields[1], 0, 32)
		val, err2 := strconv.ParseUint(fields[2], 0, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("bad msr-values line %q", sc.Text())
		}
		fake.set(cpu, uint32(addr), val)
	}
	o.devOpen = fake.open
	return o, fake
}

// setMSR writes val at offset addr of a sparse file root/dev/cpu/N/msr,
// for the test of the real pread path (non-adjacent addresses only).
func setMSR(t *testing.T, root string, cpu int, addr uint32, val uint64) {
	t.Helper()
	dir := filepath.Join(root, "dev", "cpu", fmt.Sprint(cpu))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "msr"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], val)
	if _, err := f.WriteAt(b[:], int64(addr)); err != nil {
		t.Fatal(err)
	}
}
