package bpfrt

import (
	"bytes"
	"math"
	"math/rand/v2"
	"path/filepath"

	"github.com/kushm/kushm/internal/sysstat"
	"testing"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/userside/client"
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
	ss, err := client.FromRegion(r).Syscalls()
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

// TestRecordLatencyHistogram: on 672-byte slots the runtime keeps the
// histogram and takes its decisions under the control section's rule
// exactly as sysstat.Sim (the Go twin of the kernel's kfunc, without its
// per-CPU cache) does, in every mode, with decay; the slot it leaves in
// the region is the Sim's slot byte for byte.
func TestRecordLatencyHistogram(t *testing.T) {
	for _, mode := range []uint32{abi.ThModeSigma, abi.ThModeQuantile, abi.ThModeInterp} {
		sys, err := rcuhash.Spec(abi.SecNameSyscalls, rcuhash.Geometry{Capacity: 16, NSlots: 1, ValueSize: abi.SyscallSlotSize}, nil)
		if err != nil {
			t.Fatal(err)
		}
		r, err := shm.Create(filepath.Join(t.TempDir(), "r"), shm.Layout{NCPUs: 1, ProducerKind: abi.ProducerApp, ProducerName: "bpfrt-test",
			HeartbeatPeriod: time.Hour, Sections: []shm.SectionSpec{sys, shm.ControlSpec()}}, shm.CreateOptions{GID: -1, InlineControl: true})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		g := sysstat.Global{Mode: mode, Qppm: 990_000, DecayShift: 8, Warmup: 20}
		if err := client.FromRegion(r).SetSyscallParams(client.SyscallParams{Mode: g.Mode, Qppm: g.Qppm, DecayShift: g.DecayShift, Warmup: uint64(g.Warmup)}); err != nil {
			t.Fatal(err)
		}
		w, err := rcuhash.OpenWriter(r, abi.SecNameSyscalls)
		if err != nil {
			t.Fatal(err)
		}
		k, err := NewRegionKushm(r)
		if err != nil {
			t.Fatal(err)
		}
		k.SetSyscallWriter(w)
		sim := sysstat.NewSim(1, g)
		sim.NoCache = true
		rng := rand.New(rand.NewPCG(uint64(mode), 5))
		outliers := 0
		for i := 0; i < 3000; i++ {
			x := uint64(math.Exp(rng.NormFloat64()*0.5 + 8))
			if i >= 1500 {
				x *= 5
			}
			out, err := k.RecordLatency(9, x)
			if err != nil {
				t.Fatal(err)
			}
			if want := sim.Record(0, x); out != want {
				t.Fatalf("mode %d sample %d (%d ns): runtime %v, Sim %v", mode, i, x, out, want)
			}
			if out {
				outliers++
			}
		}
		if outliers == 0 || outliers > 300 {
			t.Fatalf("mode %d: %d outliers of 3000", mode, outliers)
		}
		raw := make([]byte, abi.SyscallSlotSize)
		if err := w.Read(9, nil, raw); err != nil {
			t.Fatal(err)
		}
		want := make([]byte, abi.SyscallSlotSize)
		sysstat.EncodeSlot(want, &sim.Slots[0])
		if !bytes.Equal(raw, want) {
			t.Fatalf("mode %d: the region's slot differs from the Sim's", mode)
		}
		if sim.Slots[0].Decays != 3000>>8 {
			t.Fatalf("mode %d: %d decays", mode, sim.Slots[0].Decays)
		}
		if got, want := k.SyscallThreshold(9), sim.Threshold(); got != want || got == 0 {
			t.Fatalf("mode %d: threshold %d, Sim %d", mode, got, want)
		}
		ss, err := client.FromRegion(r).Syscalls()
		if err != nil || len(ss) != 1 {
			t.Fatalf("read: %v %v", ss, err)
		}
		if s := ss[0]; s.Total != 3000 || s.ThresholdNs != sim.Threshold() || s.Mode != client.ModeName(mode) || s.Outliers != uint64(outliers) {
			t.Fatalf("mode %d: tracker reads total %d threshold %d mode %s outliers %d", mode, s.Total, s.ThresholdNs, s.Mode, s.Outliers)
		}
	}
}
