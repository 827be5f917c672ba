// SPDX-License-Identifier: Apache-2.0

package tracker

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/sysstat"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/tools/latencyeval"
	"github.com/kushm/kushm/userside/bpfrt"
	"github.com/kushm/kushm/userside/client"
	"github.com/kushm/kushm/userside/provider"
)

// TestProbeInUserspace runs the same compiled probe object the kernel
// runs (bpf/probe.bpf.c) in the userspace runtime over a region, and
// checks the documented return values of docs/helpers.md there too.
func TestProbeInUserspace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "region")
	l, err := provider.Layout(1, 16, "")
	if err != nil {
		t.Fatal(err)
	}
	l.HeartbeatPeriod = time.Hour
	r, err := shm.Create(path, l, shm.CreateOptions{GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := rcuhash.OpenWriter(r, abi.SecNameSyscalls)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]byte, w.ValueSize())
	for i, x := range []uint64{100, 1000, 100 * 100 * 100, 1500, 800, 100000, 0, 1200} {
		binary.LittleEndian.PutUint64(v[8*i:], x)
	}
	if err := w.Insert(35, nil, v); err != nil {
		t.Fatal(err)
	}
	k, err := bpfrt.NewRegionKushm(r)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := loadProbe()
	if err != nil {
		t.Fatal(err)
	}
	col, err := bpfrt.LoadCollectionSpec(spec, &bpfrt.Options{Kushm: k})
	if err != nil {
		t.Fatalf("userspace runtime refuses the probe: %v", err)
	}
	p, err := col.Pick("kfunc_probe")
	if err != nil {
		t.Fatal(err)
	}
	run := func(a ProbeArgs) ProbeArgs {
		t.Helper()
		var b bytes.Buffer
		binary.Write(&b, binary.LittleEndian, a)
		ctx := b.Bytes()
		if _, err := p.Run(ctx); err != nil {
			t.Fatal(err)
		}
		var out ProbeArgs
		binary.Read(bytes.NewReader(ctx), binary.LittleEndian, &out)
		return out
	}
	a := run(ProbeArgs{Table: abi.TableSyscalls, Key: 35, Nr: 35})
	if a.LookupRet != 64 || a.Value.Count != 100 || a.Threshold != 1300 {
		t.Errorf("userspace: lookup %d %+v threshold %d; want 64, count 100, threshold 1300", a.LookupRet, a.Value, a.Threshold)
	}
	a = run(ProbeArgs{Cpu: 1 << 30, Preset: 0, Table: 7, Nr: 100000, Record: 1, LatencyNs: 5})
	if a.CounterRet != -int64(syscall.EINVAL) || a.LookupRet != -int64(syscall.EINVAL) || a.RecordRet != -int64(syscall.EINVAL) {
		t.Errorf("userspace, bad arguments: counter %d lookup %d record %d; want -EINVAL each",
			a.CounterRet, a.LookupRet, a.RecordRet)
	}
	a = run(ProbeArgs{Preset: 99, Table: abi.TableSyscalls, Key: 35})
	if a.CounterRet != -int64(syscall.EINVAL) || a.LookupShortRet != -int64(syscall.E2BIG) {
		t.Errorf("userspace: unknown preset %d (want -EINVAL), short buffer %d (want -E2BIG)", a.CounterRet, a.LookupShortRet)
	}
	a = run(ProbeArgs{Nr: 35, Record: 1, LatencyNs: 5000})
	if a.RecordRet != 1 {
		t.Errorf("userspace: 5000 ns against a threshold of 1300: record %d, want 1", a.RecordRet)
	}
}

// TestBatchInUserspace: the batch recorder the kernel tests use, run in
// the userspace runtime over a region it writes, takes the same decision
// as sysstat.Sim (without the kernel's per-CPU cache, as the runtime
// computes every threshold afresh) on every sample of the evaluation's
// streams, in every mode, with a fast decay; the region's slot ends equal
// to the Sim's.
func TestBatchInUserspace(t *testing.T) {
	const n = 20_000
	for _, mode := range []uint32{abi.ThModeSigma, abi.ThModeQuantile, abi.ThModeInterp} {
		for si, s := range latencyeval.Streams(n) {
			g := sysstat.Global{Mode: mode, DecayShift: 10}
			r, err := shm.Create(filepath.Join(t.TempDir(), "region"), mustLayout(t), shm.CreateOptions{GID: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if err := client.FromRegion(r).SetSyscallParams(client.SyscallParams{Mode: mode, DecayShift: g.DecayShift}); err != nil {
				t.Fatal(err)
			}
			w, err := rcuhash.OpenWriter(r, abi.SecNameSyscalls)
			if err != nil {
				t.Fatal(err)
			}
			k, err := bpfrt.NewRegionKushm(r)
			if err != nil {
				t.Fatal(err)
			}
			k.SetSyscallWriter(w)
			spec, err := loadProbe()
			if err != nil {
				t.Fatal(err)
			}
			col, err := bpfrt.LoadCollectionSpec(spec, &bpfrt.Options{Kushm: k})
			if err != nil {
				t.Fatalf("userspace runtime refuses the batch recorder: %v", err)
			}
			p, err := col.Pick("record_batch")
			if err != nil {
				t.Fatal(err)
			}
			sim := sysstat.NewSim(1, g)
			sim.NoCache = true
			xs := s.Samples(n, 1)
			const nr = 300
			outliers := 0
			m := col.Maps["batch"]
			if m == nil {
				t.Fatal("no batch map")
			}
			for i := 0; i < n; i += BatchSize {
				var bb BatchBuf
				cnt := copy(bb.Lat[:], xs[i:])
				var vb bytes.Buffer
				binary.Write(&vb, binary.LittleEndian, bb)
				if err := m.Update([]byte{3, 0, 0, 0}, vb.Bytes(), 0); err != nil {
					t.Fatal(err)
				}
				a := BatchArgs{Nr: nr, N: uint32(cnt), Slot: 3}
				var b bytes.Buffer
				binary.Write(&b, binary.LittleEndian, a)
				ctx := b.Bytes()
				if _, err := p.Run(ctx); err != nil {
					t.Fatal(err)
				}
				binary.Read(bytes.NewReader(ctx), binary.LittleEndian, &a)
				if a.Err != 0 {
					t.Fatalf("record_latency: %d", a.Err)
				}
				binary.Read(bytes.NewReader(m.Lookup([]byte{3, 0, 0, 0})), binary.LittleEndian, &bb)
				for j := 0; j < cnt; j++ {
					got := bb.Out[j/64]&(1<<(j%64)) != 0
					if want := sim.Record(0, xs[i+j]); got != want {
						t.Fatalf("mode %d stream %d sample %d (%d ns): runtime %v, Sim %v", mode, si, i+j, xs[i+j], got, want)
					}
					if got {
						outliers++
					}
				}
			}
			raw := make([]byte, abi.SyscallSlotSize)
			if err := w.Read(nr, nil, raw); err != nil {
				t.Fatal(err)
			}
			want := make([]byte, abi.SyscallSlotSize)
			sysstat.EncodeSlot(want, &sim.Slots[0])
			if !bytes.Equal(raw, want) {
				t.Fatalf("mode %d stream %d: the region's slot differs from the Sim's", mode, si)
			}
			t.Logf("mode %s, %s: %d outliers in %d samples, every decision as the Sim's", client.ModeName(mode), s.Name, outliers, n)
		}
	}
}

func mustLayout(t *testing.T) shm.Layout {
	t.Helper()
	l, err := provider.Layout(1, 16, "")
	if err != nil {
		t.Fatal(err)
	}
	l.HeartbeatPeriod = time.Hour
	return l
}
