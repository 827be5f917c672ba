package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"runtime"
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
	if bpfrt.EngineJIT.String() == "jit" && runtime.GOARCH == "amd64" && !strings.Contains(buf.String(), "jit     0x1") {
		t.Fatalf("no JIT row:\n%s", buf.String())
	}
	buf.Reset()
	if err := run([]string{"--root", t.TempDir(), "bpf", "run", "--engine", "interp", filterObj, "--ctx-hex", filterCtx}, &buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "jit") || !strings.Contains(buf.String(), "interp  0x1") {
		t.Fatalf("--engine interp:\n%s", buf.String())
	}
	if err := run([]string{"--root", t.TempDir(), "bpf", "run", "--engine", "nope", filterObj}, &buf); err == nil {
		t.Fatal("--engine nope accepted")
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
	if len(rs) < 2 || rs[0].Engine != "interp" || rs[0].R0 != 1 || rs[0].NsPerEvent <= 0 {
		t.Fatalf("%+v", rs)
	}
	k := rs[len(rs)-1]
	if k.Engine != "kernel" || k.Error == "" && k.R0 != 1 {
		t.Fatalf("kernel: %+v", k)
	}
	if runtime.GOARCH == "amd64" && (len(rs) != 3 || rs[1].Engine != "jit" || rs[1].R0 != 1 || rs[1].NsPerEvent <= 0) {
		t.Fatalf("jit: %+v", rs)
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
	for _, e := range []string{"interp", "jit"} {
		out.Reset()
		root = newRoot(&out, &out)
		// r0 = 1; r0 <<= 65 (RFC 9669: masked to 1); exit
		root.SetArgs([]string{"bpf", "plugin", "--engine=" + e, ""})
		root.SetIn(strings.NewReader("b7 00 00 00 01 00 00 00 67 00 00 00 41 00 00 00 95 00 00 00 00 00 00 00\n"))
		err := root.Execute()
		if e == "jit" && runtime.GOARCH != "amd64" {
			continue
		}
		if err != nil || out.String() != "2\n" {
			t.Fatalf("%s: %v, output %q", e, err, out.String())
		}
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
