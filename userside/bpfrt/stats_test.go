package bpfrt

import (
	"github.com/kushm/kushm/internal/sysstat"
	"path/filepath"
	"testing"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/tracker"
)

// TestRecordLatencyWriter: with SetSyscallWriter, samples go to the
// region's own slots, readable by any reader of the region.
func TestRecordLatencyWriter(t *testing.T) {
	sys, err := rcuhash.Spec(abi.SecNameSyscalls, rcuhash.Geometry{Capacity: 16, NSlots: 1, ValueSize: 64}, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "r")
	r, err := shm.Create(path, shm.Layout{NCPUs: 1, ProducerKind: abi.ProducerApp, ProducerName: "bpfrt-test",
		HeartbeatPeriod: time.Hour, Sections: []shm.SectionSpec{sys, shm.ControlSpec()}}, shm.CreateOptions{GID: -1, InlineControl: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := rcuhash.OpenWriter(r, abi.SecNameSyscalls)
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewRegionKushm(r)
	if err != nil {
		t.Fatal(err)
	}
	k.SetSyscallWriter(w)
	var ref abi.SyscallStat
	outliers := 0
	for i := 0; i < 200; i++ {
		x := uint64(1000 + i%7*10)
		if i == 150 {
			x = 1_000_000
		}
		th := sysstat.Threshold(&ref, abi.DefaultKx100, abi.DefaultWarmup)
		out, err := k.RecordLatency(7, x)
		if err != nil {
			t.Fatal(err)
		}
		if want := th != 0 && x > th; out != want {
			t.Fatalf("sample %d (%d ns, threshold %d): outlier %v", i, x, th, out)
		}
		if out {
			outliers++
		}
		sysstat.Add(&ref, x, out)
	}
	if outliers != 1 {
		t.Fatalf("%d outliers, want 1", outliers)
	}
	ss, err := tracker.ReadSyscalls(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || ss[0].Count != ref.Count || ss[0].MeanNs != ref.MeanNs || ss[0].Outliers != 1 || ss[0].MaxNs != 1_000_000 {
		t.Fatalf("tracker reads %+v, want %+v", ss, ref)
	}
	buf := make([]byte, 64)
	if n, err := k.TableLookup(abi.TableSyscalls, 7, buf); err != nil || n != 64 || sysstat.Decode(buf) != ref {
		t.Fatalf("table_lookup: %d %v %+v, want %+v", n, err, sysstat.Decode(buf), ref)
	}
	if _, err := k.RecordLatency(512, 1); err != ErrInvalid {
		t.Fatalf("nr 512: %v", err)
	}
}
