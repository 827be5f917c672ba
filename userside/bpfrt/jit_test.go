package bpfrt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/kushm/kushm/userside/bpfrt/internal/engine/amd64"
)

func skipNoJIT(t testing.TB) {
	t.Helper()
	if !amd64Supported {
		t.Skip("no JIT on this platform")
	}
}

// TestRegionLayout: the JIT's bounds checks read the interpreter's region
// table through these offsets.
func TestRegionLayout(t *testing.T) {
	var r region
	if unsafe.Sizeof(r) != amd64.RegionSize || unsafe.Offsetof(r.Start) != amd64.RegionStartOff ||
		unsafe.Offsetof(r.Size) != amd64.RegionLenOff || unsafe.Offsetof(r.Writable) != amd64.RegionWritableOff {
		t.Fatalf("region layout %d/%d/%d/%d does not match the JIT's", unsafe.Sizeof(r), unsafe.Offsetof(r.Start),
			unsafe.Offsetof(r.Size), unsafe.Offsetof(r.Writable))
	}
}

// diffHelpers replace the helpers whose results depend on the moment or
// the CPU, so both engines see the same values.
func diffHelpers() []Helper {
	return []Helper{
		{Name: "bpf_ktime_get_ns", ID: HelperKtimeGetNs, Fn: func(*Call) (uint64, error) { return 123456789, nil }},
		{Name: "bpf_get_smp_processor_id", ID: HelperGetSmpProcessorID, Fn: func(*Call) (uint64, error) { return 1, nil }},
	}
}

// diffMaps are the maps of the differential runs: their whole state can
// be reset between the two engines' runs.
func diffMaps() []Map { return []Map{NewArrayMap(8, 4), NewHashMap(4, 8, 8), NewArrayMap(16, 2)} }

func resetMaps(ms []Map) {
	for _, m := range ms {
		switch m := m.(type) {
		case *ArrayMap:
			clear(m.data)
		case *HashMap:
			clear(m.data)
			clear(m.index)
			m.free = m.free[:0]
			for i := m.n - 1; i >= 0; i-- {
				m.free = append(m.free, i)
			}
		}
	}
}

type engineRun struct {
	r0    uint64
	err   string
	ctx   []byte
	maps  [][]byte
	stack []byte
}

func snapshot(vm *VM, ctx []byte, ms []Map, r0 uint64, err error) engineRun {
	s := engineRun{r0: r0, ctx: append([]byte(nil), ctx...), stack: append([]byte(nil), vm.m.Stack[:]...)}
	if err != nil {
		s.err = err.Error()
		if errors.Is(err, ErrInternal) {
			s.err = "INTERNAL " + s.err
		}
	}
	for _, m := range ms {
		s.maps = append(s.maps, append([]byte(nil), m.memory()...))
	}
	return s
}

// differential runs code on both engines of one VM (same stack, same
// regions, same addresses) from the same state and reports a difference
// in r0, error, context, maps or stack.
func differential(t testing.TB, code, ctx0 []byte, budget uint64) (accepted bool) {
	t.Helper()
	ms := diffMaps()
	p, err := LoadRaw(code, ms, &Options{Budget: budget, Engine: EngineJIT, Helpers: diffHelpers()})
	if err != nil {
		if !errors.Is(err, ErrInvalidProgram) {
			t.Fatalf("program %x: refusal without ErrInvalidProgram: %v", code, err)
		}
		return false
	}
	vm := p.NewVM()
	ctx := append([]byte(nil), ctx0...)
	r0, err := vm.Run(ctx) // JIT
	jit := snapshot(vm, ctx, ms, r0, err)
	resetMaps(ms)
	clear(vm.m.Stack[:])
	copy(ctx, ctx0)
	r0, err = vm.runInterp(ctx) // interpreter
	interp := snapshot(vm, ctx, ms, r0, err)
	if strings.HasPrefix(jit.err, "INTERNAL") || strings.HasPrefix(interp.err, "INTERNAL") {
		t.Fatalf("program %x: internal error: jit %q interp %q", code, jit.err, interp.err)
	}
	if jit.r0 != interp.r0 || jit.err != interp.err {
		t.Fatalf("program %x ctx %x:\njit    r0=%#x err=%q\ninterp r0=%#x err=%q", code, ctx0, jit.r0, jit.err, interp.r0, interp.err)
	}
	if !bytes.Equal(jit.ctx, interp.ctx) {
		t.Fatalf("program %x: context differs:\njit    %x\ninterp %x", code, jit.ctx, interp.ctx)
	}
	for i := range jit.maps {
		if !bytes.Equal(jit.maps[i], interp.maps[i]) {
			t.Fatalf("program %x: map %d differs:\njit    %x\ninterp %x", code, i, jit.maps[i], interp.maps[i])
		}
	}
	if !bytes.Equal(jit.stack, interp.stack) {
		t.Fatalf("program %x: stack differs", code)
	}
	return true
}

// TestDifferentialRandom: random programs the checker accepts (loops,
// calls, helpers, computed and out-of-bounds pointers, atomics) give the
// same r0, error and memory on both engines.
func TestDifferentialRandom(t *testing.T) {
	skipNoJIT(t)
	if testEngine == EngineJIT {
		t.Skip("runs both engines itself")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	iters := 20000
	if testing.Short() {
		iters = 2000
	}
	if s := os.Getenv("BPFRT_DIFF_ITERS"); s != "" {
		iters, _ = strconv.Atoi(s)
	}
	accepted := 0
	for i := 0; i < iters; i++ {
		ctx := make([]byte, 64)
		for j := range ctx {
			ctx[j] = byte(rng.IntN(256))
		}
		if rng.IntN(8) == 0 {
			ctx = ctx[:rng.IntN(64)]
		}
		if differential(t, randomProgram(rng), ctx, 10000) {
			accepted++
		}
	}
	t.Logf("%d programs, %d accepted", iters, accepted)
	if accepted < iters/20 {
		t.Fatalf("only %d of %d accepted: the generator is broken", accepted, iters)
	}
}

// FuzzDifferential: mutated valid programs and contexts, both engines.
func FuzzDifferential(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"))
	}
	for _, s := range hostilePrograms() {
		f.Add(s.code, make([]byte, 64))
	}
	// filter chains: predicate groups (AVX2) and fused predicates
	f.Add(filterProgram(10, true), filterContext())
	f.Add(filterProgram(10, false), filterContext()[:64])
	f.Fuzz(func(t *testing.T, code, ctx []byte) {
		if !amd64Supported {
			t.Skip("no JIT")
		}
		for i := 0; i+8 <= len(code); i += 8 {
			if code[i] == 0x85 && code[i+1]&0xf0 == 0 && binary.LittleEndian.Uint32(code[i+4:]) == HelperGetPrandomU32 {
				t.Skip("bpf_get_prandom_u32: the engines' results differ by design")
			}
		}
		differential(t, code, ctx, 100000)
	})
}

type hostile struct {
	name string
	code []byte
	want error  // nil: runs, r0 == r0
	r0   uint64 // expected r0 when want is nil
}

// hostilePrograms: faulting computed loads and stores, huge loops, deep
// calls, division corners.
func hostilePrograms() []hostile {
	alu := func(op uint8, dst, src uint8, imm int32) sInsn {
		return sInsn{op: op, dst: dst, src: src, imm: imm}
	}
	lddw := func(dst uint8, v uint64) []asmInsn {
		return []asmInsn{{op: 0x18, dst: dst, imm: int32(uint32(v))}, {imm: int32(uint32(v >> 32))}}
	}
	cat := func(xs ...any) []byte {
		var is []asmInsn
		for _, x := range xs {
			switch x := x.(type) {
			case asmInsn:
				is = append(is, x)
			case sInsn:
				is = append(is, asmInsn(x))
			case []asmInsn:
				is = append(is, x...)
			}
		}
		return assemble(is...)
	}
	minI64 := uint64(1) << 63
	hs := []hostile{
		{"sdiv64 MIN/-1 reg", cat(lddw(0, minI64), movImm(1, -1), alu(clsALU64|aluDIV|srcX, 0, 1, 0).signed(), exit), nil, minI64},
		{"smod64 MIN%-1 reg", cat(lddw(0, minI64), movImm(1, -1), alu(clsALU64|aluMOD|srcX, 0, 1, 0).signed(), exit), nil, 0},
		{"sdiv32 MIN/-1 reg", cat(movImm(0, math.MinInt32), movImm(1, -1), alu(clsALU|aluDIV|srcX, 0, 1, 0).signed(), exit), nil, 0x80000000},
		{"smod32 MIN%-1 reg", cat(movImm(0, math.MinInt32), movImm(1, -1), alu(clsALU|aluMOD|srcX, 0, 1, 0).signed(), exit), nil, 0},
		{"sdiv64 MIN/-1 imm", cat(lddw(0, minI64), alu(clsALU64|aluDIV, 0, 0, -1).signed(), exit), nil, minI64},
		{"udiv64 by 0 reg", cat(movImm(0, 7), movImm(1, 0), alu(clsALU64|aluDIV|srcX, 0, 1, 0), exit), nil, 0},
		{"umod64 by 0 reg", cat(movImm(0, 7), movImm(1, 0), alu(clsALU64|aluMOD|srcX, 0, 1, 0), exit), nil, 7},
		{"umod32 by 0 reg", cat(lddw(0, 0x1_0000_0007), movImm(1, 0), alu(clsALU|aluMOD|srcX, 0, 1, 0), exit), nil, 7},
		{"sdiv64 by 0 reg", cat(movImm(0, -7), movImm(1, 0), alu(clsALU64|aluDIV|srcX, 0, 1, 0).signed(), exit), nil, 0},
		{"div r3 by r0", cat(movImm(3, 100), movImm(0, 7), alu(clsALU64|aluDIV|srcX, 3, 0, 0), alu(clsALU64|aluMOV|srcX, 0, 3, 0), exit), nil, 14},
		{"mod r0 by r3", cat(movImm(3, 7), movImm(0, 100), alu(clsALU64|aluMOD|srcX, 0, 3, 0), exit), nil, 2},
		{"div keeps r3", cat(movImm(3, 5), movImm(0, 100), movImm(4, 7), alu(clsALU64|aluDIV|srcX, 0, 4, 0), alu(clsALU64|aluADD|srcX, 0, 3, 0), exit), nil, 19},
		{"wild load", cat(lddw(1, 0xdead_0000), asmInsn{op: clsLDX | modeMEM | szDW, dst: 0, src: 1}, exit), ErrOutOfBounds, 0},
		{"null store", cat(movImm(1, 0), asmInsn{op: clsST | modeMEM | szW, dst: 1, imm: 1}, mov0, exit), ErrOutOfBounds, 0},
		{"kernel address load", cat(lddw(1, 0xffff_8000_0000_0000), asmInsn{op: clsLDX | modeMEM | szB, dst: 0, src: 1}, exit), ErrOutOfBounds, 0},
		{"stack underflow computed", cat(asmInsn{op: clsLDX | modeMEM | szDW, dst: 3, src: 1}, alu(clsALU64|aluMOV|srcX, 1, 10, 0), alu(clsALU64|aluADD|srcX, 1, 3, 0),
			alu(clsALU64|aluSUB, 1, 0, 8*512+8), asmInsn{op: clsLDX | modeMEM | szDW, dst: 0, src: 1}, exit), ErrOutOfBounds, 0},
		{"store to code-like address", cat(asmInsn{op: clsLDX | modeMEM | szDW, dst: 3, src: 1}, lddw(1, 0x40_0000), alu(clsALU64|aluADD|srcX, 1, 3, 0),
			asmInsn{op: clsSTX | modeMEM | szDW, dst: 1, src: 1}, mov0, exit), ErrOutOfBounds, 0},
		{"straddle ctx end", cat(alu(clsALU64|aluADD|srcX, 1, 2, 0), alu(clsALU64|aluSUB, 1, 0, 4), asmInsn{op: clsLDX | modeMEM | szDW, dst: 0, src: 1}, exit), ErrOutOfBounds, 0},
		{"huge loop", cat(mov0, asmInsn{op: clsJMP | jmpJA, off: -1}, exit), ErrBudget, 0},
		{"counting loop", cat(movImm(0, 0), movImm(1, 1000), alu(clsALU64|aluADD, 0, 0, 3), alu(clsALU64|aluSUB, 1, 0, 1), asmInsn{op: clsJMP | jmpJNE, dst: 1, off: -3}, exit), nil, 3000},
		{"deep calls", cat(asmInsn{op: clsJMP | jmpCALL, src: pseudoCall, imm: -1}, exit), ErrCallDepth, 0},
		// f writes its frame (203 bytes deep: a zeroing loop and a byte
		// tail), g (the same frame slot, next call) must read zeros.
		{"callee frames zeroed", cat(asmInsn{op: clsJMP | jmpCALL, src: pseudoCall, imm: 2}, asmInsn{op: clsJMP | jmpCALL, src: pseudoCall, imm: 5}, exit,
			movImm(3, -1), asmInsn{op: clsSTX | modeMEM | szDW, dst: 10, src: 3, off: -203}, mov0, exit,
			asmInsn{op: clsLDX | modeMEM | szDW, dst: 0, src: 10, off: -203}, exit), nil, 0},
		{"calls and back", cat(movImm(6, 40), asmInsn{op: clsJMP | jmpCALL, src: pseudoCall, imm: 2}, alu(clsALU64|aluADD|srcX, 0, 6, 0), exit,
			movImm(6, 1), movImm(0, 2), exit), nil, 42},
	}
	return hs
}

// sInsn is an asmInsn with a signed() modifier (off 1: sdiv/smod).
type sInsn asmInsn

func (s sInsn) signed() asmInsn { s.off = 1; return asmInsn(s) }

func TestHostilePrograms(t *testing.T) {
	for _, h := range hostilePrograms() {
		t.Run(h.name, func(t *testing.T) {
			p, err := LoadRaw(h.code, nil, &Options{Budget: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			ctx := make([]byte, 64)
			for i := 0; i < 3; i++ { // the VM is reused: a fault leaves it usable
				r0, err := p.NewVM().Run(ctx)
				if h.want != nil {
					var re *RuntimeError
					if !errors.Is(err, h.want) || !errors.As(err, &re) || re.PC < 0 {
						t.Fatalf("%s: got %v, want %v naming an instruction", p.Engine(), err, h.want)
					}
					continue
				}
				if err != nil || r0 != h.r0 {
					t.Fatalf("%s: r0=%#x err=%v, want %#x", p.Engine(), r0, err, h.r0)
				}
			}
			if amd64Supported && testEngine != EngineJIT {
				differential(t, h.code, ctx, 1<<20)
			}
		})
	}
}

// TestJITWX: the code is mapped read+execute, never writable, and no
// mapping of the process is writable and executable at once.
func TestJITWX(t *testing.T) {
	skipNoJIT(t)
	p, err := LoadRaw(filterProgram(10, true), nil, &Options{Engine: EngineJIT})
	if err != nil {
		t.Fatal(err)
	}
	base := uint64(p.code.Base())
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skip(err)
	}
	found := false
	for _, line := range strings.Split(string(b), "\n") {
		fs := strings.Fields(line)
		if len(fs) < 2 {
			continue
		}
		if strings.Contains(fs[1], "w") && strings.Contains(fs[1], "x") {
			t.Errorf("writable and executable mapping: %s", line)
		}
		var lo, hi uint64
		if _, err := fmt.Sscanf(fs[0], "%x-%x", &lo, &hi); err != nil {
			continue
		}
		if base >= lo && base < hi {
			found = true
			if fs[1] != "r-xp" {
				t.Errorf("code mapping %s, want r-xp", line)
			}
		}
	}
	if !found {
		t.Fatalf("code at %#x not in /proc/self/maps", base)
	}
	if r, err := p.Run(filterContext()); err != nil || r != 1 {
		t.Fatalf("r0=%d err=%v", r, err)
	}
}

// TestJITCoverage: every instruction the checker emits compiles (no
// program falls back to the interpreter), except a run whose context is
// shorter than the constant-offset accesses need: that one run goes to the
// interpreter, which reports the fault at its instruction.
func TestJITCoverage(t *testing.T) {
	skipNoJIT(t)
	for _, v := range readVectorsOrNil(t) {
		p, err := LoadRaw(v.code, nil, &Options{MaskShifts: true, Engine: EngineJIT})
		if err != nil {
			if !errors.Is(err, ErrInvalidProgram) {
				t.Errorf("%s: %v", v.name, err)
			}
			continue
		}
		if p.Engine() != EngineJIT {
			t.Errorf("%s: runs on %s", v.name, p.Engine())
		}
	}
	p, err := LoadRaw(filterProgram(10, true), nil, &Options{Engine: EngineJIT})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Run(filterContext()[:16])
	var re *RuntimeError
	if !errors.As(err, &re) || !errors.Is(err, ErrOutOfBounds) || re.PC != 4 {
		t.Fatalf("short context: %v", err)
	}
}

func readVectorsOrNil(t *testing.T) []vector {
	if _, err := os.Stat("../../../shared/conformance/vectors.tsv"); err != nil && os.Getenv("KUSHM_SHARED") == "" {
		return nil
	}
	return readVectors(t)
}

// TestAtomicsBothEngines: every atomic operation, 32 and 64 bits, with r0
// and another register as the source, on the context and the stack,
// aligned and not: the same r0, registers (summed into r0) and memory on
// both engines.
func TestAtomicsBothEngines(t *testing.T) {
	skipNoJIT(t)
	if testEngine == EngineJIT {
		t.Skip("runs both engines itself")
	}
	ops := []int32{atomicADD, atomicADD | atomicFETCH, atomicOR, atomicOR | atomicFETCH, atomicAND, atomicAND | atomicFETCH,
		atomicXOR, atomicXOR | atomicFETCH, atomicXCHG, atomicCMPXCHG}
	n := 0
	for _, op := range ops {
		for _, sz := range []uint8{szW, szDW} {
			for _, src := range []uint8{0, 3} {
				for _, base := range []uint8{1, 10} {
					for _, off := range []int16{-16, -13, 8} {
						if base == 1 && off < 0 {
							off = -off
						}
						is := []asmInsn{
							{op: 0x18, dst: 0, imm: 0x7766_5544}, {imm: 0x1122_3344},
							{op: 0x18, dst: 3, imm: -0x0f0f_0f10}, {imm: 0x0101_0101},
							{op: clsST | modeMEM | szDW, dst: 10, off: -16, imm: 0x5a5a_5a5a},
							{op: clsST | modeMEM | szDW, dst: 10, off: -8, imm: 0x7766_5544},
							{op: clsSTX | modeATOMIC | sz, dst: base, src: src, off: off, imm: op},
							{op: clsALU64 | aluADD | srcX, dst: 0, src: 3},
							{op: clsLDX | modeMEM | szDW, dst: 4, src: 10, off: -16},
							{op: clsALU64 | aluXOR | srcX, dst: 0, src: 4},
							exit,
						}
						ctx := make([]byte, 64)
						for i := range ctx {
							ctx[i] = byte(0x44 + i)
						}
						if differential(t, assemble(is...), ctx, 1000) {
							n++
						}
					}
				}
			}
		}
	}
	if n < len(ops)*2*2*2*3 {
		t.Fatalf("only %d atomic programs accepted", n)
	}
}

// TestJITUnderRuntimeStress: JIT code running on several goroutines, with
// helper exits and faults, while the collector runs, goroutines are
// preempted and the CPU profiler's signals land in generated code: no
// crash, every run's result right.
func TestJITUnderRuntimeStress(t *testing.T) {
	skipNoJIT(t)
	if testEngine == EngineInterp {
		t.Skip("JIT only")
	}
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err == nil {
		defer pprof.StopCPUProfile()
	}
	// a loop of 10 000 iterations around a map lookup helper call
	m := NewArrayMap(8, 4)
	code := assemble(
		movImm(6, 10000), movImm(7, 0),
		asmInsn{op: clsST | modeMEM | szW, dst: 10, off: -4, imm: 1},
		asmInsn{op: 0x18, dst: 1, src: pseudoMapFD}, asmInsn{},
		asmInsn{op: clsALU64 | aluMOV | srcX, dst: 2, src: 10}, asmInsn{op: clsALU64 | aluADD, dst: 2, imm: -4},
		asmInsn{op: clsJMP | jmpCALL, imm: HelperMapLookupElem},
		asmInsn{op: clsJMP | jmpJEQ, dst: 0, off: 1},
		asmInsn{op: clsALU64 | aluADD, dst: 7, imm: 1},
		asmInsn{op: clsALU64 | aluSUB, dst: 6, imm: 1},
		asmInsn{op: clsJMP | jmpJNE, dst: 6, off: -9},
		asmInsn{op: clsALU64 | aluMOV | srcX, dst: 0, src: 7}, exit)
	p, err := LoadRaw(code, []Map{m}, &Options{Engine: EngineJIT})
	if err != nil {
		t.Fatal(err)
	}
	wild, err := LoadRaw(assemble(asmInsn{op: 0x18, dst: 1, imm: 0x1000}, asmInsn{}, asmInsn{op: clsLDX | modeMEM | szDW, dst: 0, src: 1}, exit), nil, &Options{Engine: EngineJIT})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				runtime.GC()
			}
		}
	}()
	defer close(stop)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := make([]byte, 64)
			for i := 0; i < 100; i++ {
				if r, err := p.Run(ctx); err != nil || r != 10000 {
					errs <- fmt.Errorf("loop: r0=%d err=%v", r, err)
					return
				}
				if _, err := wild.Run(ctx); !errors.Is(err, ErrOutOfBounds) {
					errs <- fmt.Errorf("wild load: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestInlineArrayLookup: bpf_map_lookup_elem on array maps (inlined by the
// JIT when the key is on the stack) gives the interpreter's r0 and memory:
// keys in and past range, on the stack and in the context (the helper
// exit), two array maps and a hash map.
func TestInlineArrayLookup(t *testing.T) {
	skipNoJIT(t)
	if testEngine == EngineJIT {
		t.Skip("runs both engines itself")
	}
	// r6 = key; *(u32 *)(r10-4) = r6; r0 = lookup(map M, keyptr); if r0 == 0 exit 7;
	// *(u64 *)r0 += 5; r0 = *(u64 *)r0; exit
	prog := func(mapIdx int32, key int32, ctxKey bool) []byte {
		keyPtr := []asmInsn{{op: clsALU64 | aluMOV | srcX, dst: 2, src: 10}, {op: clsALU64 | aluADD, dst: 2, imm: -4}}
		if ctxKey {
			keyPtr = []asmInsn{{op: clsALU64 | aluMOV | srcX, dst: 2, src: 1}}
		}
		is := []asmInsn{
			{op: clsST | modeMEM | szW, dst: 10, off: -4, imm: key},
			{op: clsST | modeMEM | szW, dst: 1, off: 0, imm: key},
		}
		is = append(is, keyPtr...)
		is = append(is, asmInsn{op: 0x18, dst: 1, src: pseudoMapFD, imm: mapIdx}, asmInsn{},
			asmInsn{op: clsJMP | jmpCALL, imm: HelperMapLookupElem},
			asmInsn{op: clsJMP | jmpJNE, dst: 0, off: 2},
			movImm(0, 7), exit,
			movImm(3, 5),
			asmInsn{op: clsSTX | modeATOMIC | szDW, dst: 0, src: 3, imm: atomicADD},
			asmInsn{op: clsLDX | modeMEM | szDW, dst: 0, src: 0},
			exit)
		return assemble(is...)
	}
	n := 0
	for _, m := range []int32{0, 1, 2} {
		for _, key := range []int32{0, 1, 3, 4, -1} {
			for _, ctxKey := range []bool{false, true} {
				if differential(t, prog(m, key, ctxKey), make([]byte, 64), 1000) {
					n++
				}
			}
		}
	}
	if n != 30 {
		t.Fatalf("%d of 30 programs accepted", n)
	}
	// and the inline path answers what the helper answers
	am := NewArrayMap(8, 4)
	binary.LittleEndian.PutUint64(am.Value(2), 40)
	p, err := LoadRaw(prog(0, 2, false), []Map{am}, &Options{Engine: EngineJIT})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := p.Run(make([]byte, 64)); err != nil || r != 45 {
		t.Fatalf("r0=%d err=%v", r, err)
	}
}

// BenchmarkArrayLookup: a program doing one array-map lookup and an
// increment, on each engine (the JIT inlines the lookup).
func BenchmarkArrayLookup(b *testing.B) {
	code := assemble(
		asmInsn{op: clsST | modeMEM | szW, dst: 10, off: -4, imm: 1},
		asmInsn{op: 0x18, dst: 1, src: pseudoMapFD}, asmInsn{},
		asmInsn{op: clsALU64 | aluMOV | srcX, dst: 2, src: 10}, asmInsn{op: clsALU64 | aluADD, dst: 2, imm: -4},
		asmInsn{op: clsJMP | jmpCALL, imm: HelperMapLookupElem},
		asmInsn{op: clsJMP | jmpJEQ, dst: 0, off: 2},
		movImm(3, 1), asmInsn{op: clsSTX | modeATOMIC | szDW, dst: 0, src: 3, imm: atomicADD},
		mov0, exit)
	for _, e := range engines() {
		b.Run(e.String(), func(b *testing.B) {
			p, err := LoadRaw(code, []Map{NewArrayMap(8, 4)}, &Options{Engine: e})
			if err != nil {
				b.Fatal(err)
			}
			vm := p.NewVM()
			ctx := make([]byte, 64)
			for i := 0; i < b.N; i++ {
				vm.Run(ctx)
			}
		})
	}
}

// TestFusedPredicates: filter chains with every 64-bit condition against
// an immediate (the JIT compares memory directly when the loaded register
// is dead), on contexts that make each predicate pass and fail, and a
// chain whose loaded register is read afterwards (not fused): both engines
// agree.
func TestFusedPredicates(t *testing.T) {
	skipNoJIT(t)
	if testEngine == EngineJIT {
		t.Skip("runs both engines itself")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	codes := []uint8{jmpJEQ, jmpJGT, jmpJGE, jmpJSET, jmpJNE, jmpJSGT, jmpJSGE, jmpJLT, jmpJLE, jmpJSLT, jmpJSLE}
	for _, code := range codes {
		for _, imm := range []int32{0, 1, -1, 1000, 0x7fffffff, -0x80000000} {
			// three predicates, then r0 = 1 (or r0 = r2: r2 live) ; exit; fail: r0 = 0; exit
			for _, live := range []bool{false, true} {
				var is []asmInsn
				for i := 0; i < 3; i++ {
					is = append(is, asmInsn{op: clsLDX | modeMEM | szDW, dst: 2, src: 1, off: int16(8 * i)})
					is = append(is, asmInsn{op: clsJMP | code, dst: 2, imm: imm, off: int16(2*(3-i-1) + 2)})
				}
				if live {
					is = append(is, asmInsn{op: clsALU64 | aluMOV | srcX, dst: 0, src: 2}, exit)
				} else {
					is = append(is, movImm(0, 1), exit)
				}
				is = append(is, mov0, exit)
				for k := 0; k < 8; k++ {
					ctx := make([]byte, 24)
					for f := 0; f < 3; f++ {
						var v uint64
						switch rng.IntN(4) {
						case 0:
							v = uint64(int64(imm))
						case 1:
							v = uint64(int64(imm)) + 1
						case 2:
							v = uint64(int64(imm)) - 1
						default:
							v = rng.Uint64()
						}
						binary.LittleEndian.PutUint64(ctx[8*f:], v)
					}
					if !differential(t, assemble(is...), ctx, 1000) {
						t.Fatalf("refused: %x", assemble(is...))
					}
				}
			}
		}
	}
}

// TestRunFastPath: a program that needs nothing set up but its arguments
// (the filter) takes Run's fast path, with the interpreter's results for
// a full context, a context one field short (the interpreter's fault at
// the first access past the end) and FALSE-biased input; a program that
// uses the stack or a helper does not take it.
func TestRunFastPath(t *testing.T) {
	skipNoJIT(t)
	for _, n := range []int{1, 10, 50} {
		for _, tb := range []bool{true, false} {
			p, err := LoadRaw(filterProgram(n, tb), nil, &Options{Engine: EngineJIT})
			if err != nil {
				t.Fatal(err)
			}
			q, err := p.As(EngineInterp)
			if err != nil {
				t.Fatal(err)
			}
			vm, ivm := p.NewVM(), q.NewVM()
			if vm.fastMin == math.MaxUint64 {
				t.Fatalf("N=%d: filter does not take the fast path", n)
			}
			full := filterContext()
			for _, ctx := range [][]byte{full, full[:8*n-1], full[:0]} {
				r, err := vm.Run(ctx)
				ir, ierr := ivm.Run(ctx)
				if r != ir || fmt.Sprint(err) != fmt.Sprint(ierr) {
					t.Errorf("N=%d tb=%v len %d: jit %d, %v; interp %d, %v", n, tb, len(ctx), r, err, ir, ierr)
				}
			}
		}
	}
	// r10: a stack store and load; a helper call
	stack := []byte{
		0x7a, 0x0a, 0xf8, 0xff, 7, 0, 0, 0, // *(u64 *)(r10-8) = 7
		0x79, 0xa0, 0xf8, 0xff, 0, 0, 0, 0, // r0 = *(u64 *)(r10-8)
		0x95, 0, 0, 0, 0, 0, 0, 0,
	}
	p, err := LoadRaw(stack, nil, &Options{Engine: EngineJIT})
	if err != nil {
		t.Fatal(err)
	}
	if vm := p.NewVM(); vm.fastMin != math.MaxUint64 {
		t.Error("a program with a stack frame to zero takes the fast path")
	} else if r, err := vm.Run(nil); r != 7 || err != nil {
		t.Errorf("stack program: %d, %v", r, err)
	}
}
