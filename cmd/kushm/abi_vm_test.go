package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/modload"
	"github.com/kushm/kushm/internal/sysstat"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/tools/vmtest"
	"github.com/kushm/kushm/tracker"
	"github.com/kushm/kushm/userside/client"
	"github.com/kushm/kushm/userside/client/dump"
	"github.com/kushm/kushm/userside/provider"
	"github.com/kushm/kushm/userside/web"
)

func loadModule(t *testing.T) *shm.Region {
	t.Helper()
	if !modload.Root("").Loaded() {
		if err := modload.Load(vmtest.ModulePath(), nil); err != nil {
			t.Fatalf("load module: %v", err)
		}
		// Leave the guest as we found it (runs after the region's
		// Close below: cleanups run last first).
		t.Cleanup(func() {
			// A closed BPF program releases the module after a grace
			// period: retry a busy module for a while.
			err := modload.Unload()
			for end := time.Now().Add(10 * time.Second); errors.Is(err, modload.ErrBusy) && time.Now().Before(end); err = modload.Unload() {
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				t.Errorf("unload module: %v", err)
			}
		})
	}
	path, err := client.Discover("")
	if err != nil {
		t.Fatal(err)
	}
	r, err := shm.Open(path, shm.Options{AllowStale: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if r.Header().ProducerKind != abi.ProducerKernel {
		t.Fatalf("%s: producer kind %d, want the module", path, r.Header().ProducerKind)
	}
	return r
}

// schemaBytes returns the raw schema entries of section s of r.
func schemaBytes(t *testing.T, r *shm.Region, s *shm.Section) []byte {
	t.Helper()
	sch, err := r.Section(abi.SecNameSchema)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Bytes(sch)
	if err != nil {
		t.Fatal(err)
	}
	return b[uint64(s.ColFirst)*abi.ColumnEntrySize : uint64(s.ColFirst+s.ColCount)*abi.ColumnEntrySize]
}

// TestVMProducersSameSchema: the module's region and the daemon's (the
// layout `kushm serve` creates, for the same CPU count) describe every
// well-known section they both produce identically: kind, column count
// and the column entries byte for byte (and an atomicarr's whole
// geometry). What may differ is producer-specific: offsets, sizes, the
// control section's companion file, an rcuhash table's capacity and node
// stride (one value slot per CPU in the module, one in the daemon), and
// where a section's columns start in the schema (the daemon has
// sections the module lacks: abi.SectionDecl.DaemonOnly, checked here).
func TestVMProducersSameSchema(t *testing.T) {
	vmtest.Require(t)
	mod := loadModule(t)
	l, err := provider.Layout(int(mod.Header().NCPUs), 64, "# test\n")
	if err != nil {
		t.Fatal(err)
	}
	d, err := shm.Create(filepath.Join(t.TempDir(), "region"), l, shm.CreateOptions{GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	hm, hd := mod.Header(), d.Header()
	if hm.ABIMajor != hd.ABIMajor || hm.ABIMinor != hd.ABIMinor || hm.ABIMinor != abi.ABIMinor {
		t.Errorf("ABI: module %d.%d, daemon %d.%d, Go %d.%d", hm.ABIMajor, hm.ABIMinor, hd.ABIMajor, hd.ABIMinor, abi.ABIMajor, abi.ABIMinor)
	}
	names := []string{abi.SecNameControl, abi.SecNameInfo}
	for _, s := range abi.Sections {
		if s.DaemonOnly {
			if _, err := mod.Section(s.Name); err == nil {
				t.Errorf("section %q is declared DaemonOnly but the module lays it out: clear the flag", s.Name)
			}
			continue
		}
		names = append(names, s.Name)
	}
	for _, name := range names {
		sm, err1 := mod.Section(name)
		sd, err2 := d.Section(name)
		if err1 != nil || err2 != nil {
			t.Errorf("section %q: module %v, daemon %v", name, err1, err2)
			continue
		}
		if sm.Kind != sd.Kind || sm.ColCount != sd.ColCount {
			t.Errorf("section %q: module kind %d with %d columns, daemon kind %d with %d",
				name, sm.Kind, sm.ColCount, sd.Kind, sd.ColCount)
		}
		if sm.Kind == abi.SecAtomicArr && (sm.ElemSize != sd.ElemSize || sm.Count != sd.Count || sm.Aux0 != sd.Aux0 || sm.Aux1 != sd.Aux1 || sm.Flags != sd.Flags) {
			t.Errorf("section %q: module %+v, daemon %+v", name, sm, sd)
		}
		if bm, bd := schemaBytes(t, mod, sm), schemaBytes(t, d, sd); len(bm) != len(bd) {
			continue // the column counts differ: reported above
		}
		if bm, bd := schemaBytes(t, mod, sm), schemaBytes(t, d, sd); !bytes.Equal(bm, bd) {
			for i := 0; i+abi.ColumnEntrySize <= min(len(bm), len(bd)); i += abi.ColumnEntrySize {
				if !bytes.Equal(bm[i:i+abi.ColumnEntrySize], bd[i:i+abi.ColumnEntrySize]) {
					t.Errorf("section %q column %d:\nmodule %q\ndaemon %q", name, i/abi.ColumnEntrySize,
						bm[i:i+abi.ColumnEntrySize], bd[i:i+abi.ColumnEntrySize])
					break
				}
			}
		}
	}
}

// onCPU runs fn on a thread pinned to cpu.
func onCPU(t *testing.T, cpu int, fn func()) {
	t.Helper()
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			done <- err
			return
		}
		fn()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatalf("pin to CPU %d: %v", cpu, err)
	}
}

// TestVMDumpEqualsSyscalls: nanosleeps of different lengths on two CPUs
// fill two per-CPU slots of the module's syscall table; once the tracker
// is closed (the table no longer changes), `kushm dump`'s generic merge
// (schema rules only) prints exactly the statistics `kushm syscalls`
// computes with sysstat.Merge, for every syscall.
func TestVMDumpEqualsSyscalls(t *testing.T) {
	vmtest.Require(t)
	mod := loadModule(t)
	if mod.Header().NCPUs < 2 {
		t.Skip("needs two CPUs")
	}
	restore := pinAll() // see TestVMOutliersCommand
	tr, err := tracker.Start(tracker.Options{TGID: uint32(os.Getpid())})
	restore()
	if err != nil {
		t.Fatalf("start tracker: %v", err)
	}
	nanosleep := uint64(0)
	if nr, ok := tracker.SyscallNumber("nanosleep"); ok {
		nanosleep = uint64(nr)
	} else {
		tr.Close()
		t.Fatal("no syscall number for nanosleep")
	}
	tab, err := rcuhash.Open(mod, abi.SecNameSyscalls)
	if err != nil {
		tr.Close()
		t.Fatal(err)
	}
	// Until nanosleep has samples in at least two CPU slots (the
	// tracker may take a moment to attach on a loaded host).
	slots := make([]byte, tab.NSlots()*tab.ValueSize())
	deadline := time.Now().Add(60 * time.Second)
	for busy := 0; ; {
		for cpu, ns := range []int64{2000, 200000} {
			onCPU(t, cpu, func() {
				for i := 0; i < 50; i++ {
					ts := syscall.NsecToTimespec(ns)
					syscall.Nanosleep(&ts, nil)
				}
			})
		}
		busy = 0
		if err := tab.Read(nanosleep, nil, slots); err == nil {
			for j := 0; j < tab.NSlots(); j++ {
				if sysstat.Decode(slots[j*tab.ValueSize():]).Count != 0 {
					busy++
				}
			}
		}
		if busy >= 2 {
			break
		}
		if time.Now().After(deadline) {
			tr.Close()
			t.Fatalf("nanosleep recorded in %d CPU slots after 60 s", busy)
		}
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("close tracker: %v", err)
	}

	var out bytes.Buffer
	if err := run([]string{"syscalls", "-o", "json"}, &out); err != nil {
		t.Fatalf("kushm syscalls: %v", err)
	}
	var typed web.SyscallsDoc
	if err := json.Unmarshal(out.Bytes(), &typed); err != nil {
		t.Fatalf("syscalls json: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := run([]string{"dump", "-o", "json", "--max", "100000"}, &out); err != nil {
		t.Fatalf("kushm dump: %v", err)
	}
	var doc dump.Document
	dec := json.NewDecoder(&out)
	dec.UseNumber() // u64 values exactly
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("dump json: %v", err)
	}
	generic := map[uint64]map[string]uint64{}
	for _, s := range doc.Sections {
		if s.Name != abi.SecNameSyscalls {
			continue
		}
		for _, e := range s.Entries {
			vals := map[string]uint64{}
			for i, c := range s.Columns {
				if n, ok := e.Values[i].(json.Number); ok {
					v, err := strconv.ParseUint(n.String(), 10, 64)
					if err != nil {
						t.Fatalf("dump: %s = %s: %v", c.Name, n, err)
					}
					vals[c.Name] = v
				}
			}
			generic[e.Key] = vals
		}
	}
	if len(typed.Syscalls) == 0 || len(generic) != len(typed.Syscalls) {
		t.Fatalf("kushm syscalls lists %d syscalls, dump %d", len(typed.Syscalls), len(generic))
	}
	seen := false
	for _, s := range typed.Syscalls {
		g, ok := generic[uint64(s.NR)]
		if !ok {
			t.Errorf("%s (%d): not in the dump", s.Name, s.NR)
			continue
		}
		sigma := uint64(0)
		if g["count"] != 0 {
			sigma = sysstat.ISqrt(g["m2"] / g["count"])
		}
		for _, f := range []struct {
			name      string
			dump, typ uint64
		}{
			{"count", g["count"], s.Count}, {"mean", g["mean_ns"], s.MeanNs}, {"σ", sigma, s.StdDevNs},
			{"min", g["min_ns"], s.MinNs}, {"max", g["max_ns"], s.MaxNs}, {"outliers", g["outliers"], s.Outliers},
			{"last", g["last_ns"], s.LastNs}, {"m2", g["m2"], s.M2}, {"sum", g["sum_ns"], s.SumNs},
		} {
			if f.dump != f.typ {
				t.Errorf("%s (%d): dump %s = %d, kushm syscalls %d", s.Name, s.NR, f.name, f.dump, f.typ)
			}
		}
		if uint64(s.NR) == nanosleep {
			seen = true
			t.Logf("nanosleep over two CPU slots: count %d mean %d σ %d min %d max %d", s.Count, s.MeanNs, s.StdDevNs, s.MinNs, s.MaxNs)
		}
	}
	if !seen {
		t.Fatal("nanosleep missing from kushm syscalls")
	}
}
