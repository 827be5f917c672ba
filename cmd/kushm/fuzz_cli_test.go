package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/sys"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/ring"
	"github.com/kushm/kushm/shm"
)

// FuzzCLI extends the parsers' fuzzing (shm.FuzzRegion, the client's) to
// the command entry points: the fuzzed bytes are written to a region file
// and a command runs over it in-process (run(args, stdout)), as a user
// would run it. It must end with output or an error: no panic (the fuzzer
// reports one), no hang, no control character from the region on stdout.
// The corpus is testdata/fuzz/FuzzCLI; the counts are in
// docs/reliability.md.
func FuzzCLI(f *testing.F) {
	seed := cliSeed(f)
	for i := range fuzzCommands {
		f.Add(uint8(i), seed)
	}
	f.Fuzz(func(t *testing.T, which uint8, region []byte) {
		if len(region) > 1<<20 {
			return
		}
		path := filepath.Join(t.TempDir(), "kushm")
		if err := os.WriteFile(path, region, 0o600); err != nil {
			t.Fatal(err)
		}
		args := append(fuzzCommands[int(which)%len(fuzzCommands)], "--region", path)
		var out bytes.Buffer
		done := make(chan error, 1)
		go func() { done <- runWith(args, &out, &out) }()
		select {
		case err := <-done:
			if testing.Verbose() {
				t.Logf("%v: %v\n%.300s", args[:len(args)-2], err, out.String())
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%v hangs", args)
		}
		if i := strings.IndexAny(out.String(), "\x1b\x07\r\u009b"); i >= 0 {
			t.Fatalf("%v: control character on the output at %d: %q", args, i, out.String())
		}
	})
}

// fuzzCommands are the entry points FuzzCLI runs (top and trace -f run
// until stopped; their loops are the same reads as stats and trace).
var fuzzCommands = [][]string{
	{"dump"},
	{"status"},
	{"syscalls"},
	{"query", "cache-misses", "--interval", "1ms", "--top", "3", "--allow-stale"},
	{"stats", "--interval", "1ms", "--allow-stale"},
	{"trace"},
	{"bpf", "run", "--engine", "interp", "../../userside/bpfrt/testdata/kushm.o", "--ctx-hex", strings.Repeat("00", 200)},
	{"-o", "json", "status"},
}

// cliSeed is a small region with every section a command reads (control
// inline: the fuzzer writes one file), a live entry or two in each table,
// a trace ring with records and an info text.
func cliSeed(tb testing.TB) []byte {
	tb.Helper()
	procs, err := rcuhash.Spec(abi.SecNameProcs, rcuhash.Geometry{Capacity: 4, NSlots: 1,
		ValueSize: int(unsafe.Sizeof(abi.ProcStat{})), DataSize: int(unsafe.Sizeof(abi.ProcData{}))}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	sysc, err := rcuhash.Spec(abi.SecNameSyscalls, rcuhash.Geometry{Capacity: 4, NSlots: 1, ValueSize: abi.SyscallSlotSize}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	l := shm.Layout{NCPUs: 2, ProducerKind: abi.ProducerDaemon, ProducerName: "fuzz", HeartbeatPeriod: time.Hour,
		Sections: []shm.SectionSpec{
			atomicarr.Spec(abi.SecNamePMU, 2, 16, nil),
			procs, sysc, shm.ControlSpec(),
			shm.TextSpec(abi.SecNameInfo, "# a note\n"),
			ring.Spec(4, 16),
		}}
	path := filepath.Join(tb.TempDir(), "seed")
	r, err := shm.Create(path, l, shm.CreateOptions{GID: -1, InlineControl: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	pw, _ := rcuhash.OpenWriter(r, abi.SecNameProcs)
	data := make([]byte, unsafe.Sizeof(abi.ProcData{}))
	copy(data, "fuzzed")
	pw.Insert(42, data, make([]byte, unsafe.Sizeof(abi.ProcStat{})))
	sw, _ := rcuhash.OpenWriter(r, abi.SecNameSyscalls)
	sw.Insert(1, nil, make([]byte, abi.SyscallSlotSize))
	a, _ := atomicarr.Open(r, abi.SecNamePMU)
	a.Update(0, 1, 3, []uint64{10, 20})
	rg, _ := ring.Open(r)
	for i := 0; i < 6; i++ {
		rg.Write(1, sys.MonotonicNs(), 0, []byte{byte(i)})
	}
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
