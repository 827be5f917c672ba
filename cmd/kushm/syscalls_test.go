package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/sysstat"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/tracker"
	"github.com/kushm/kushm/userside/client"
	"github.com/kushm/kushm/userside/provider"
)

// syscallTable makes a provider-layout region whose syscalls table holds
// one slot, for syscall nr, with the value fill writes.
func syscallTable(t *testing.T, nr uint64, fill func(v []byte)) string {
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
	fill(v)
	if err := w.Insert(nr, nil, v); err != nil {
		t.Fatal(err)
	}
	return path
}

// syscallRegion makes a provider-layout region whose syscalls table holds
// nanosleep (count 100, mean 1000 ns, σ 100 ns).
func syscallRegion(t *testing.T) string {
	t.Helper()
	return syscallTable(t, 35, func(v []byte) {
		for i, x := range []uint64{100, 1000, 100 * 100 * 100, 1500, 800, 100000, 2, 1200} {
			binary.LittleEndian.PutUint64(v[8*i:], x)
		}
	})
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
		Syscalls []client.SyscallStat
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

// histRegion makes a provider-layout region whose syscalls table holds
// read (nr 0) with the histogram of xs, recorded as the kernel records
// them (no decay: h = 40).
func histRegion(t *testing.T, xs []uint64) string {
	t.Helper()
	return syscallTable(t, 0, func(v []byte) {
		if len(v) != abi.SyscallSlotSize {
			t.Fatalf("provider's syscalls slots: %d bytes", len(v))
		}
		var s sysstat.Slot
		for _, x := range xs {
			s.Record(x, false, 40)
		}
		sysstat.EncodeSlot(v, &s)
	})
}

// TestSyscallsQuantilesBruteForce: the p50 … p99.9 `kushm syscalls`
// prints are within the schema's relative error (2^(1/8), 9.05 %) of the
// exact quantiles of the samples fed, found by sorting them.
func TestSyscallsQuantilesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 7))
	for _, gen := range []func() uint64{
		func() uint64 { return uint64(2000 * math.Exp(0.8*rng.NormFloat64())) },
		func() uint64 { // bimodal
			if rng.IntN(100) < 5 {
				return uint64(200_000 * math.Exp(0.1*rng.NormFloat64()))
			}
			return uint64(1000 * math.Exp(0.1*rng.NormFloat64()))
		},
		func() uint64 { return uint64(1000 / math.Pow(1-rng.Float64(), 1/1.5)) },
	} {
		xs := make([]uint64, 50_000)
		for i := range xs {
			xs[i] = gen()
		}
		path := histRegion(t, xs)
		var buf bytes.Buffer
		if err := run([]string{"syscalls", "--region", path, "-o", "json"}, &buf); err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Syscalls []client.SyscallStat
		}
		if err := json.Unmarshal(buf.Bytes(), &doc); err != nil || len(doc.Syscalls) != 1 {
			t.Fatalf("%v: %s", err, buf.String())
		}
		s := doc.Syscalls[0]
		slices.Sort(xs)
		for _, c := range []struct {
			q   float64
			got uint64
		}{{0.5, s.P50Ns}, {0.9, s.P90Ns}, {0.99, s.P99Ns}, {0.999, s.P999Ns}} {
			exact := xs[int(math.Ceil(c.q*float64(len(xs))))-1]
			if r := float64(c.got) / float64(exact); r > 1.0906 || r < 1/1.0906 {
				t.Errorf("p%v: printed %d ns, exact %d ns (ratio %.4f)", c.q*100, c.got, exact, r)
			}
		}
		var n uint64
		for _, b := range s.Hist {
			n += b.Count
		}
		if s.Total != uint64(len(xs)) || n != uint64(len(xs)) || s.MaxNs != xs[len(xs)-1] {
			t.Errorf("total %d, buckets %d, max %d; fed %d, max %d", s.Total, n, s.MaxNs, len(xs), xs[len(xs)-1])
		}
	}
}

func TestSyscallsHistAndPolicy(t *testing.T) {
	xs := make([]uint64, 10_000)
	for i := range xs {
		xs[i] = 1000 + uint64(i%100)*10
	}
	xs[0] = 5_000_000
	path := histRegion(t, xs)
	var buf bytes.Buffer
	if err := run([]string{"syscalls", "--region", path, "--mode", "interp", "--q", "0.99", "--decay", "12"}, &buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "interpolated of the 0.99 quantile × 1") || !strings.Contains(out, "2^12") || !strings.Contains(out, "interp") {
		t.Fatalf("after --mode interp --q 0.99 --decay 12:\n%s", out)
	}
	buf.Reset()
	if err := run([]string{"syscalls", "--region", path, "--hist", "read"}, &buf); err != nil {
		t.Fatal(err)
	}
	out = buf.String()
	if !strings.Contains(out, "◀ threshold") || !strings.Contains(out, "10000 samples in the window") || strings.Count(out, "\n") < 5 {
		t.Fatalf("--hist read:\n%s", out)
	}
	buf.Reset()
	if err := run([]string{"syscalls", "--region", path, "--policy", "read=sigma:2.5", "-o", "json"}, &buf); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Mode     string
		Syscalls []client.SyscallStat
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Mode != "interp" || doc.Syscalls[0].Mode != "k·σ" || len(doc.Syscalls[0].Hist) == 0 {
		t.Fatalf("after --policy read=sigma:2.5: global %s, read %s, %d buckets", doc.Mode, doc.Syscalls[0].Mode, len(doc.Syscalls[0].Hist))
	}
	for _, bad := range []string{"read=fast", "read=quantile:2", "read=sigma:1:2", "nosuch=sigma", "read"} {
		if err := run([]string{"syscalls", "--region", path, "--policy", bad}, &buf); err == nil {
			t.Errorf("--policy %q accepted", bad)
		}
	}
}
