package bpfrt

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

type asmInsn struct {
	op       uint8
	dst, src uint8
	off      int16
	imm      int32
}

func assemble(is ...asmInsn) []byte {
	var out []byte
	for _, i := range is {
		var b [8]byte
		b[0], b[1] = i.op, i.dst|i.src<<4
		binary.LittleEndian.PutUint16(b[2:], uint16(i.off))
		binary.LittleEndian.PutUint32(b[4:], uint32(i.imm))
		out = append(out, b[:]...)
	}
	return out
}

var (
	exit   = asmInsn{op: clsJMP | jmpEXIT}
	mov0   = asmInsn{op: clsALU64 | aluMOV, dst: 0, imm: 0}
	movImm = func(d uint8, v int32) asmInsn { return asmInsn{op: clsALU64 | aluMOV, dst: d, imm: v} }
)

func TestRefusals(t *testing.T) {
	cases := []struct {
		name   string
		code   []byte
		pc     int
		reason string
	}{
		{"unknown opcode", assemble(mov0, asmInsn{op: 0xff}, exit), 1, "unknown"},
		{"bad register", assemble(asmInsn{op: clsALU64 | aluMOV | srcX, dst: 0, src: 11}, exit), 0, "invalid source register"},
		{"write r10", assemble(movImm(10, 1), exit), 0, "not writable"},
		{"jump outside", assemble(mov0, asmInsn{op: clsJMP | jmpJA, off: 5}, exit), 1, "outside the program"},
		{"jump backwards outside", assemble(mov0, asmInsn{op: clsJMP | jmpJA, off: -3}, exit), 1, "outside the program"},
		{"fall through", assemble(mov0, mov0), 1, "falls through"},
		{"uninitialised register", assemble(asmInsn{op: clsALU64 | aluADD | srcX, dst: 0, src: 3}, exit), 0, "r0 is read before"},
		{"uninitialised r0 at exit", assemble(exit), 0, "r0 is read before"},
		{"stack out of frame", assemble(mov0, asmInsn{op: clsSTX | modeMEM | szDW, dst: 10, src: 0, off: 8}, exit), 1, "outside the 512-byte frame"},
		{"stack below frame", assemble(mov0, asmInsn{op: clsSTX | modeMEM | szDW, dst: 10, src: 0, off: -520}, exit), 1, "outside the 512-byte frame"},
		{"negative ctx offset", assemble(asmInsn{op: clsLDX | modeMEM | szW, dst: 0, src: 1, off: -4}, exit), 0, "negative offset"},
		{"shift out of range", assemble(mov0, asmInsn{op: clsALU64 | aluLSH, dst: 0, imm: 64}, exit), 1, "out of range"},
		{"unknown helper", assemble(asmInsn{op: clsJMP | jmpCALL, imm: 9999}, exit), 0, "unknown helper"},
		{"callx", assemble(mov0, asmInsn{op: clsJMP | jmpCALL | srcX, dst: 1}, exit), 1, "callx"},
		{"lddw cut", assemble(mov0, exit, asmInsn{op: 0x18}), 2, "second half"},
		{"jump into lddw", assemble(asmInsn{op: clsJMP | jmpJA, off: 1}, asmInsn{op: 0x18}, asmInsn{}, exit), 0, "middle of a 64-bit load"},
		{"map deref", assemble(asmInsn{op: 0x18, src: 1}, asmInsn{}, asmInsn{op: clsLDX | modeMEM | szDW, dst: 0, src: 0}, exit), 0, "unknown map"},
		{"helper arg uninit", assemble(asmInsn{op: clsJMP | jmpCALL, imm: HelperMapLookupElem}, exit), 0, "argument 1"},
		{"helper map arg", assemble(movImm(1, 0), movImm(2, 0), asmInsn{op: clsJMP | jmpCALL, imm: HelperMapLookupElem}, exit), 2, "not a map pointer"},
		{"legacy packet load", assemble(asmInsn{op: clsLD | modeABS | szW}, exit), 0, "legacy"},
		{"empty", nil, -1, "empty"},
		{"odd length", []byte{1, 2, 3}, -1, "multiple of 8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadRaw(c.code, nil, nil)
			if !errors.Is(err, ErrInvalidProgram) {
				t.Fatalf("want refusal, got %v", err)
			}
			if !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("error %q does not say %q", err, c.reason)
			}
			var ve *VerifierError
			if c.pc >= 0 {
				if !errors.As(err, &ve) || ve.PC != c.pc {
					t.Fatalf("error %q does not name instruction %d", err, c.pc)
				}
			}
		})
	}
}

func TestRuntimeFaults(t *testing.T) {
	ro := make([]byte, 64)
	cases := []struct {
		name string
		code []byte
		ctx  []byte
		opts *Options
		want error
	}{
		{"wild load", assemble(asmInsn{op: 0x18, dst: 1, imm: 0x1000}, asmInsn{}, asmInsn{op: clsLDX | modeMEM | szDW, dst: 0, src: 1}, exit), nil, nil, ErrOutOfBounds},
		{"ctx overrun", assemble(asmInsn{op: clsLDX | modeMEM | szDW, dst: 0, src: 1, off: 60}, exit), make([]byte, 64), nil, ErrOutOfBounds},
		{"ctx dynamic overrun", assemble(asmInsn{op: clsALU64 | aluADD | srcX, dst: 1, src: 2}, asmInsn{op: clsLDX | modeMEM | szB, dst: 0, src: 1}, exit), make([]byte, 8), nil, ErrOutOfBounds},
		{"infinite loop", assemble(mov0, asmInsn{op: clsJMP | jmpJA, off: -1}, exit), nil, &Options{Budget: 10000}, ErrBudget},
		{"misaligned atomic", assemble(movImm(2, 1), asmInsn{op: clsSTX | modeATOMIC | szDW, dst: 1, src: 2, off: 3}, mov0, exit), make([]byte, 16), nil, ErrMisaligned},
		{"recursion", assemble(asmInsn{op: clsJMP | jmpCALL, src: pseudoCall, imm: -1}, exit), nil, nil, ErrCallDepth},
	}
	// read-only memory: the program gets its address in the context.
	roProg := assemble(asmInsn{op: clsLDX | modeMEM | szDW, dst: 3, src: 1}, movImm(2, 7), asmInsn{op: clsSTX | modeMEM | szDW, dst: 3, src: 2}, mov0, exit)
	ctx := make([]byte, 8)
	binary.LittleEndian.PutUint64(ctx, addrOf(ro))
	cases = append(cases, struct {
		name string
		code []byte
		ctx  []byte
		opts *Options
		want error
	}{"read-only memory", roProg, ctx, &Options{Memory: []Memory{{Data: ro}}}, ErrOutOfBounds})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := LoadRaw(c.code, nil, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.NewVM().Run(c.ctx)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			var re *RuntimeError
			if !errors.As(err, &re) || re.PC < 0 {
				t.Fatalf("error %v does not name an instruction", err)
			}
		})
	}
	// the same read-only memory can be read.
	p, err := LoadRaw(assemble(asmInsn{op: clsLDX | modeMEM | szDW, dst: 3, src: 1}, asmInsn{op: clsLDX | modeMEM | szDW, dst: 0, src: 3, off: 8}, exit), nil, &Options{Memory: []Memory{{Data: ro}}})
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint64(ro[8:], 99)
	if r, err := p.Run(ctx); err != nil || r != 99 {
		t.Fatalf("read of Memory: %d, %v", r, err)
	}
}

func TestStackZeroed(t *testing.T) {
	// First run writes the stack, second reads it: the read must see 0.
	code := assemble(
		asmInsn{op: clsJMP | jmpJEQ, dst: 2, imm: 0, off: 2}, // ctx len 0: read
		movImm(3, 77), asmInsn{op: clsSTX | modeMEM | szDW, dst: 10, src: 3, off: -8}, // write
		asmInsn{op: clsLDX | modeMEM | szDW, dst: 0, src: 10, off: -8},
		exit)
	p, err := LoadRaw(code, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	vm := p.NewVM()
	if r, _ := vm.Run(make([]byte, 1)); r != 77 {
		t.Fatalf("first run %d", r)
	}
	if r, _ := vm.Run(nil); r != 0 {
		t.Fatalf("stale stack value %d", r)
	}
}

func TestHelperFromGo(t *testing.T) {
	var seen []byte
	h := Helper{Name: "app_sum", ID: 1000, Args: []ArgKind{ArgMem, ArgSize}, Fn: func(c *Call) (uint64, error) {
		seen = append(seen[:0], c.Mem(0)...)
		var s uint64
		for _, b := range c.Mem(0) {
			s += uint64(b)
		}
		return s, nil
	}}
	code := assemble(movImm(2, 3), asmInsn{op: clsJMP | jmpCALL, imm: 1000}, exit)
	p, err := LoadRaw(code, nil, &Options{Helpers: []Helper{h}})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := p.Run([]byte{1, 2, 3, 4}); err != nil || r != 6 {
		t.Fatalf("r0=%d err=%v", r, err)
	}
	// a size beyond the context is refused before the helper runs.
	code = assemble(movImm(2, 100), asmInsn{op: clsJMP | jmpCALL, imm: 1000}, exit)
	p, _ = LoadRaw(code, nil, &Options{Helpers: []Helper{h}})
	if _, err := p.Run([]byte{1, 2, 3, 4}); !errors.Is(err, ErrOutOfBounds) {
		t.Fatalf("got %v", err)
	}
}

// TestDeepCalls uses the stack in every one of the 8 frames.
func TestDeepCalls(t *testing.T) {
	// f(n): store n at r10-8; if n < 7 { f(n+1) }; r0 = *(r10-8) + r0
	code := assemble(
		movImm(1, 0), // main: n = 0
		asmInsn{op: clsJMP | jmpCALL, src: pseudoCall, imm: 1},
		exit,
		// f: r1 = n
		asmInsn{op: clsSTX | modeMEM | szDW, dst: 10, src: 1, off: -512},
		asmInsn{op: clsSTX | modeMEM | szDW, dst: 10, src: 1, off: -8},
		movImm(0, 0),
		asmInsn{op: clsJMP | jmpJGE, dst: 1, imm: 6, off: 2},
		asmInsn{op: clsALU64 | aluADD, dst: 1, imm: 1},
		asmInsn{op: clsJMP | jmpCALL, src: pseudoCall, imm: -6},
		asmInsn{op: clsLDX | modeMEM | szDW, dst: 2, src: 10, off: -8},
		asmInsn{op: clsLDX | modeMEM | szDW, dst: 3, src: 10, off: -512},
		asmInsn{op: clsALU64 | aluADD | srcX, dst: 0, src: 2},
		asmInsn{op: clsALU64 | aluADD | srcX, dst: 0, src: 3},
		exit)
	p, err := LoadRaw(code, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	vm := p.NewVM()
	for i := 0; i < 3; i++ {
		r, err := vm.Run(nil)
		if err != nil || r != 2*(0+1+2+3+4+5+6) {
			t.Fatalf("r0=%d err=%v", r, err)
		}
	}
}

func TestHashMaps(t *testing.T) {
	for _, typ := range []MapType{Hash, LRUHash} {
		m, err := NewMap(MapSpec{Type: typ, KeySize: 4, ValueSize: 8, MaxEntries: 4})
		if err != nil {
			t.Fatal(err)
		}
		var full error
		for i := 0; i < 6; i++ {
			if err := m.Update([]byte{byte(i), 0, 0, 0}, []byte{byte(i), 0, 0, 0, 0, 0, 0, 0}, UpdateAny); err != nil {
				full = err
			}
		}
		if typ == Hash && !errors.Is(full, ErrMapFull) {
			t.Fatalf("hash: %v", full)
		}
		if typ == LRUHash && (full != nil || m.(*HashMap).Len() != 4 || m.Lookup([]byte{5, 0, 0, 0}) == nil) {
			t.Fatalf("lru: %v, %d entries", full, m.(*HashMap).Len())
		}
		if err := m.Update([]byte{5, 0, 0, 0}, make([]byte, 8), UpdateNoExist); typ == LRUHash && !errors.Is(err, ErrKeyExist) {
			t.Fatalf("NOEXIST on a present key: %v", err)
		}
	}
}

// TestBudget: the budget bounds instructions, loops and calls alike.
func TestBudget(t *testing.T) {
	// r0 counts iterations of a 4-instruction loop until r0 == r2 (ctx len).
	loop := assemble(mov0,
		asmInsn{op: clsALU64 | aluADD, dst: 0, imm: 1},
		asmInsn{op: clsALU64 | aluMOV, dst: 3, imm: 0},
		asmInsn{op: clsALU64 | aluMOV, dst: 4, imm: 0},
		asmInsn{op: clsJMP | jmpJNE | srcX, dst: 0, src: 2, off: -4},
		exit)
	p, err := LoadRaw(loop, nil, &Options{Budget: 4000})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := p.Run(make([]byte, 999)); err != nil || r != 999 {
		t.Fatalf("999 iterations (3996 instructions): %d, %v", r, err)
	}
	if _, err := p.Run(make([]byte, 1001)); !errors.Is(err, ErrBudget) {
		t.Fatalf("1001 iterations: %v", err)
	}
	// an endless loop calling a 40-instruction function: charged per call.
	body := []asmInsn{{op: clsJMP | jmpCALL, src: pseudoCall, imm: 2}, {op: clsJMP | jmpJA, off: -2}, exit}
	for i := 0; i < 39; i++ {
		body = append(body, mov0)
	}
	body = append(body, exit)
	p, err = LoadRaw(assemble(body...), nil, &Options{Budget: 100000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(nil); !errors.Is(err, ErrBudget) {
		t.Fatalf("endless calls: %v", err)
	}
}
