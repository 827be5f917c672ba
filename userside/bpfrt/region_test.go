package bpfrt

import (
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
)

// liveRegion creates a region as a producer would and fills it.
func liveRegion(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kushm")
	procs, err := rcuhash.Spec(abi.SecNameProcs, rcuhash.Geometry{Capacity: 16, NSlots: 1, ValueSize: 128, DataSize: 32}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sys, err := rcuhash.Spec(abi.SecNameSyscalls, rcuhash.Geometry{Capacity: 16, NSlots: 2, ValueSize: 64}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := shm.Create(path, shm.Layout{NCPUs: 2, ProducerKind: abi.ProducerApp, ProducerName: "bpfrt-test",
		HeartbeatPeriod: time.Hour, Sections: []shm.SectionSpec{
			atomicarr.Spec(abi.SecNamePMU, 2, 15, nil), procs, sys, shm.ControlSpec(),
		}}, shm.CreateOptions{GID: -1, InlineControl: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	pmu, err := atomicarr.Open(r, abi.SecNamePMU)
	if err != nil {
		t.Fatal(err)
	}
	if err := pmu.Update(1, 1, 1<<0|1<<3, []uint64{111, 0, 0, 333}); err != nil {
		t.Fatal(err)
	}
	pt, err := rcuhash.OpenWriter(r, abi.SecNameProcs)
	if err != nil {
		t.Fatal(err)
	}
	stat := make([]byte, 128)
	for i := 0; i < 16; i++ {
		binary.LittleEndian.PutUint64(stat[8*i:], uint64(1000+i))
	}
	if err := pt.Insert(4242, make([]byte, 32), stat); err != nil {
		t.Fatal(err)
	}
	st, err := rcuhash.OpenWriter(r, abi.SecNameSyscalls)
	if err != nil {
		t.Fatal(err)
	}
	// syscall 1: 100 samples of mean 1000 ns (sum 100000), M2 = 100*100^2 on each CPU.
	w := make([]byte, 64)
	binary.LittleEndian.PutUint64(w[0:], 100)
	binary.LittleEndian.PutUint64(w[8:], 1000)
	binary.LittleEndian.PutUint64(w[16:], 100*100*100)
	binary.LittleEndian.PutUint64(w[40:], 100*1000)
	if err := st.Insert(1, nil, w); err != nil {
		t.Fatal(err)
	}
	if err := st.Update(1, 1, w); err != nil {
		t.Fatal(err)
	}
	return path
}

type report struct {
	CPU, Preset uint32
	Key         uint64
	Nr, Pad     uint32
	Latency     uint64
	CounterRet  int64
	Counter     uint64
	LookupRet   int64
	Value       [16]uint64
	Threshold   uint64
	Outlier     int64
}

func runReport(t *testing.T, p *Program, in report) report {
	t.Helper()
	buf := make([]byte, 200)
	if _, err := binary.Encode(buf, binary.LittleEndian, in); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(buf); err != nil {
		t.Fatal(err)
	}
	var out report
	if _, err := binary.Decode(buf, binary.LittleEndian, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestKushmHelpersLiveRegion(t *testing.T) {
	path := liveRegion(t)
	r, err := shm.Open(path, shm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	k, err := NewRegionKushm(r)
	if err != nil {
		t.Fatal(err)
	}
	col, err := LoadELF("testdata/kushm.o", &Options{Kushm: k})
	if err != nil {
		t.Fatal(err)
	}
	p := col.Programs["probe"]

	got := runReport(t, p, report{CPU: 1, Preset: 3, Key: 4242, Nr: 1, Latency: 10})
	if got.CounterRet != 0 || got.Counter != 333 {
		t.Errorf("read_counter(1, 3) = %d, %d; want 0, 333", got.CounterRet, got.Counter)
	}
	if got.LookupRet != 128 || got.Value[0] != 1000 || got.Value[15] != 1015 {
		t.Errorf("table_lookup(procs, 4242) = %d, %v", got.LookupRet, got.Value)
	}
	// The program records first (10 ns, decided against the threshold in
	// force: two CPUs of 100 samples, mean 1000, sigma 100: 1000 + 3*100),
	// then reads the threshold, which now merges the private sample:
	// n 201, S 200010, mean 995, M2 = 2e6 + floor(990²·200·1/201) =
	// 2975223, sigma isqrt(2975223/201) = isqrt(14802) = 121.
	if want := uint64(995 + 3*121); got.Threshold != want {
		t.Errorf("syscall_threshold(1) = %d, want %d", got.Threshold, want)
	}
	if th := k.SyscallThreshold(1); th != 995+3*121 {
		t.Errorf("SyscallThreshold(1) = %d", th)
	}
	if got.Outlier != 0 {
		t.Errorf("record_latency(1, 10) = %d, want 0", got.Outlier)
	}
	got = runReport(t, p, report{CPU: 1, Preset: 1, Key: 99, Nr: 1, Latency: 5000})
	if got.CounterRet != -eNODATA {
		t.Errorf("read_counter of an invalid slot = %d, want -ENODATA", got.CounterRet)
	}
	if got.LookupRet != -eNOENT {
		t.Errorf("table_lookup of a missing key = %d, want -ENOENT", got.LookupRet)
	}
	if got.Outlier != 1 {
		t.Errorf("record_latency(1, 5000) = %d, want 1", got.Outlier)
	}
	got = runReport(t, p, report{CPU: 7, Preset: 0, Key: 4242, Nr: 3})
	if got.CounterRet != -eINVAL {
		t.Errorf("read_counter(cpu 7) = %d, want -EINVAL", got.CounterRet)
	}
	if got.Threshold != 0 {
		t.Errorf("syscall_threshold(3) = %d, want 0 (unknown)", got.Threshold)
	}
}

func TestKfuncUnresolved(t *testing.T) {
	if _, err := LoadELF("testdata/kushm.o", nil); err == nil {
		t.Fatal("kfuncs resolved without a Kushm backend")
	}
}

// TestRegionMap reads region tables through bpf_map_lookup_elem.
func TestRegionMap(t *testing.T) {
	r, err := shm.Open(liveRegion(t), shm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	procs, err := NewRegionMap(r, abi.SecNameProcs)
	if err != nil {
		t.Fatal(err)
	}
	pmu, err := NewRegionMap(r, abi.SecNamePMU)
	if err != nil {
		t.Fatal(err)
	}
	// key = *(u64 *)ctx on the stack; v = lookup(map); r0 = v ? v[off] : -1
	prog := func(mapIdx int32, keySize int16, off int16) []byte {
		return assemble(
			asmInsn{op: clsLDX | modeMEM | szDW, dst: 2, src: 1},
			asmInsn{op: clsSTX | modeMEM | szDW, dst: 10, src: 2, off: -8},
			asmInsn{op: 0x18, dst: 1, src: pseudoMapFD, imm: mapIdx}, asmInsn{},
			asmInsn{op: clsALU64 | aluMOV | srcX, dst: 2, src: 10},
			asmInsn{op: clsALU64 | aluADD, dst: 2, imm: -8},
			asmInsn{op: clsJMP | jmpCALL, imm: HelperMapLookupElem},
			asmInsn{op: clsJMP | jmpJNE, dst: 0, off: 2},
			movImm(0, -1), exit,
			asmInsn{op: clsLDX | modeMEM | szDW, dst: 0, src: 0, off: off},
			exit)
	}
	maps := []Map{procs, pmu}
	p, err := LoadRaw(prog(0, 8, 8*15), maps, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := make([]byte, 8)
	binary.LittleEndian.PutUint64(ctx, 4242)
	if v, err := p.Run(ctx); err != nil || v != 1015 {
		t.Fatalf("procs[4242].counter[15] = %d, %v", v, err)
	}
	binary.LittleEndian.PutUint64(ctx, 1)
	if v, _ := p.Run(ctx); v != ^uint64(0) {
		t.Fatalf("missing key: %d", v)
	}
	p, err = LoadRaw(prog(1, 4, 8*3), maps, nil)
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint64(ctx, 1)
	if v, err := p.Run(ctx); err != nil || v != 333 {
		t.Fatalf("pmu[1][3] = %d, %v", v, err)
	}
	sysm, err := NewRegionMap(r, abi.SecNameSyscalls)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 8)
	key[0] = 1
	v := sysm.Lookup(key)
	if v == nil || binary.LittleEndian.Uint64(v) != 200 || binary.LittleEndian.Uint64(v[40:]) != 200000 {
		t.Fatalf("syscalls[1] merged = %v", v)
	}
	if err := procs.Update(make([]byte, 8), make([]byte, 128), 0); err == nil {
		t.Fatal("region map update accepted")
	}
}
