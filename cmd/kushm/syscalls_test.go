package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/tracker"
	"github.com/kushm/kushm/userside/provider"
)

// syscallRegion makes a provider-layout region whose syscalls table holds
// nanosleep (count 100, mean 1000 ns, σ 100 ns).
func syscallRegion(t *testing.T) string {
	t.Helper()
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
	for i, x := range []uint64{100, 1000, 100 * 100 * 100, 1500, 800, 100000, 2, 1200} {
		binary.LittleEndian.PutUint64(v[8*i:], x)
	}
	if err := w.Insert(35, nil, v); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSyscallsCommand(t *testing.T) {
	path := syscallRegion(t)
	var buf bytes.Buffer
	if err := run([]string{"syscalls", "--region", path}, &buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	// threshold = 1000 + 3·100 = 1300 ns once 100 >= 64 samples
	if !strings.Contains(out, "nanosleep") || !strings.Contains(out, "1.3µs") {
		t.Fatalf("syscalls table:\n%s", out)
	}

	buf.Reset()
	if err := run([]string{"syscalls", "--region", path, "--set", "nanosleep=5000", "-o", "json"}, &buf); err != nil {
		t.Fatal(err)
	}
	var js struct {
		Kx100    uint64
		Syscalls []tracker.SyscallStat
	}
	if err := json.Unmarshal(buf.Bytes(), &js); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if len(js.Syscalls) != 1 || js.Syscalls[0].ThresholdNs != 5000 || !js.Syscalls[0].Override ||
		js.Syscalls[0].StdDevNs != 100 || js.Kx100 != 300 {
		t.Fatalf("after --set: %+v", js)
	}

	buf.Reset()
	if err := run([]string{"syscalls", "--region", path, "--set", "35=0", "--k", "200"}, &buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "1.2µs") || strings.Contains(buf.String(), "override") {
		t.Fatalf("after reset and k=2:\n%s", buf.String())
	}
	if err := run([]string{"syscalls", "--region", path, "--set", "nosuchcall=1"}, &buf); err == nil {
		t.Fatal("unknown syscall accepted")
	}
}

func TestOutliersNeedsKfuncs(t *testing.T) {
	if tracker.KfuncsAvailable() == nil {
		t.Skip("kushm kfuncs present: the guest tests cover the tracker")
	}
	var buf bytes.Buffer
	err := run([]string{"outliers", "--for", "10ms"}, &buf)
	if err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("outliers without the module: %v", err)
	}
}
