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
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/userside/bpfrt"
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
