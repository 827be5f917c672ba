package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/userside/bpfrt"
)

const filterObj = "../../userside/bpfrt/testdata/filter.o"

// the filter benchmark's context: f[j] = 1000+j.
const filterCtx = "e803000000000000e903000000000000ea03000000000000eb03000000000000ec03000000000000ed03000000000000ee03000000000000ef03000000000000"

func TestBPFRun(t *testing.T) {
	var buf bytes.Buffer
	if err := run([]string{"--root", t.TempDir(), "bpf", "run", filterObj, "--ctx-hex", filterCtx}, &buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "interp  0x1") {
		t.Fatalf("output:\n%s", buf.String())
	}
}

func TestBPFBenchJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := run([]string{"--root", t.TempDir(), "-o", "json", "bpf", "bench", filterObj, "--ctx-hex", filterCtx, "-n", "1000"}, &buf); err != nil {
		t.Fatal(err)
	}
	var rs []bpfrt.EngineResult
	if err := json.Unmarshal(buf.Bytes(), &rs); err != nil {
		t.Fatalf("%v:\n%s", err, buf.String())
	}
	if len(rs) != 2 || rs[0].Engine != "interp" || rs[0].R0 != 1 || rs[0].NsPerEvent <= 0 {
		t.Fatalf("%+v", rs)
	}
	if rs[1].Error == "" && rs[1].R0 != 1 {
		t.Fatalf("kernel: %+v", rs[1])
	}
}

func TestBPFCheckRefusesKfuncsWithoutRegion(t *testing.T) {
	var buf bytes.Buffer
	err := run([]string{"--root", t.TempDir(), "bpf", "check", "../../userside/bpfrt/testdata/kushm.o"}, &buf)
	if err == nil || !strings.Contains(err.Error(), "need a region") {
		t.Fatalf("err = %v", err)
	}
}

func TestBPFPlugin(t *testing.T) {
	var out bytes.Buffer
	// r0 = *(u8 *)(r1 + 1); exit
	root := newRoot(&out, &out)
	root.SetArgs([]string{"bpf", "plugin", "11 22 33"})
	root.SetIn(strings.NewReader("71 10 01 00 00 00 00 00 95 00 00 00 00 00 00 00\n"))
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "22\n" {
		t.Fatalf("output %q", out.String())
	}
	root = newRoot(&out, &out)
	root.SetArgs([]string{"bpf", "plugin", ""})
	root.SetIn(strings.NewReader("ff 00 00 00 00 00 00 00\n"))
	if err := root.Execute(); err == nil {
		t.Fatal("invalid program accepted")
	}
}

func TestTrace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app")
	r, err := shm.Create(path, shm.Layout{NCPUs: 1, ProducerKind: abi.ProducerApp, ProducerName: "trace-test",
		HeartbeatPeriod: time.Hour, Sections: []shm.SectionSpec{bpfrt.TraceRingSpec(8, 8)}}, shm.CreateOptions{GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ring, err := bpfrt.OpenRing(r)
	if err != nil {
		t.Fatal(err)
	}
	tp := bpfrt.NewTracepoint("tick", 3, ring)
	tp.Fire([]byte{1, 2, 3, 4})
	var buf bytes.Buffer
	if err := run([]string{"trace", path}, &buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "01020304") || !strings.Contains(buf.String(), "SEQ") {
		t.Fatalf("output:\n%s", buf.String())
	}
}
