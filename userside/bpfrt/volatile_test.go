package bpfrt

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/shm"
)

// volatileRegion creates a region file with a multi-page trace ring and
// returns its path, the producer (read-write mapping) and the ring's
// bytes in a reader's (read-only) mapping: both are memory mapped from a
// file that can shrink under the mapping.
func volatileRegion(t *testing.T) (string, *shm.Region, []byte, []byte) {
	path := filepath.Join(t.TempDir(), "app")
	w, err := shm.Create(path, shm.Layout{NCPUs: 1, ProducerKind: abi.ProducerApp, ProducerName: "bpfrt-test",
		HeartbeatPeriod: time.Hour, Sections: []shm.SectionSpec{TraceRingSpec(4096, 64)}}, shm.CreateOptions{GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	r, err := shm.Open(path, shm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	bytesOf := func(r *shm.Region) []byte {
		var b []byte
		for _, s := range r.Sections() {
			if sb, err := r.Bytes(&s); err == nil && len(sb) > len(b) {
				b = sb
			}
		}
		if len(b) < 3*4096 {
			t.Fatalf("section of %d bytes: want several pages", len(b))
		}
		return b
	}
	wb, rb := bytesOf(w), bytesOf(r)
	if !shm.AnyVolatile() || !shm.Volatile(wb) || !shm.Volatile(rb) || shm.Volatile(make([]byte, 64)) {
		t.Fatalf("volatile: producer %v, reader %v, heap %v", shm.Volatile(wb), shm.Volatile(rb), shm.Volatile(make([]byte, 64)))
	}
	return path, w, wb, rb
}

// loadVia: r3 = *(u64 *)(ctx + 0), a pointer; r0 = *(u64 *)(r3 + 0).
var loadVia = assemble(asmInsn{op: clsLDX | modeMEM | szDW, dst: 3, src: 1}, asmInsn{op: clsLDX | modeMEM | szDW, dst: 0, src: 3}, exit)

// bothEngines loads code on the interpreter and (where there is one) the
// JIT.
func bothEngines(t *testing.T, code []byte, opts Options) []*Program {
	var ps []*Program
	for _, e := range []Engine{EngineInterp, EngineJIT} {
		if e == EngineJIT && !amd64Supported {
			continue
		}
		opts.Engine = e
		p, err := LoadRaw(code, nil, &opts)
		if err != nil {
			t.Fatal(err)
		}
		if p.Engine() != e {
			t.Fatalf("loaded on %v, want %v", p.Engine(), e)
		}
		ps = append(ps, p)
	}
	return ps
}

// TestVolatileTruncated: a program loading from the part of a region
// file truncated under the mapping, through a pointer (Memory) and as
// its context, stops with the error shm.Guard gives, the same on both
// engines; the process does not crash (the JIT's code never touches the
// mapping: it exits to Go for the access).
func TestVolatileTruncated(t *testing.T) {
	path, _, _, rb := volatileRegion(t)
	if err := os.Truncate(path, abi.HeaderAreaSize); err != nil {
		t.Fatal(err)
	}
	last := rb[len(rb)-8:] // beyond the new end of file
	ctx := make([]byte, 8)
	binary.LittleEndian.PutUint64(ctx, addrOf(last))
	run := func(p *Program, ctx []byte) (r0 uint64, err error) {
		gerr := shm.Guard(func() error {
			r0, err = p.Run(ctx)
			return nil
		})
		if gerr != nil {
			t.Fatalf("the fault escaped the run: %v", gerr)
		}
		return r0, err
	}
	var errs []string
	for _, p := range bothEngines(t, loadVia, Options{Memory: []Memory{{Data: rb}}}) {
		_, err := run(p, ctx)
		if !errors.Is(err, shm.ErrChanged) {
			t.Fatalf("%v: load through a pointer: got %v, want shm.ErrChanged", p.Engine(), err)
		}
		errs = append(errs, err.Error())
	}
	// the context itself in the truncated part (constant-offset loads)
	ctxLoad := assemble(asmInsn{op: clsLDX | modeMEM | szDW, dst: 0, src: 1}, exit)
	for _, p := range bothEngines(t, ctxLoad, Options{}) {
		_, err := run(p, last)
		if !errors.Is(err, shm.ErrChanged) {
			t.Fatalf("%v: context load: got %v, want shm.ErrChanged", p.Engine(), err)
		}
		errs = append(errs, err.Error())
	}
	if len(errs) == 4 && (errs[0] != errs[1] || errs[2] != errs[3]) {
		t.Fatalf("engines disagree:\n%s", errs)
	}
	t.Logf("%s", errs[0])
}

// TestVolatileIntact: loads, stores and atomics on an intact region
// mapping (volatile: the JIT steps them in Go) give the same results on
// both engines, and the ones the program computes.
func TestVolatileIntact(t *testing.T) {
	_, _, wb, rb := volatileRegion(t)
	// ctx: [0] address in the writable mapping, [8] address in the
	// read-only one. r6 = w; *(u64 *)(r6+8) = 40; lock *(u64 *)(r6+8) +=
	// 2; r7 = r; r0 = *(u64 *)(r7+8) (the reader's view of the same
	// page); *(u32 *)(r6+16) = 5; r0 += *(u32 *)(r6+16).
	code := assemble(
		asmInsn{op: clsLDX | modeMEM | szDW, dst: 6, src: 1},
		asmInsn{op: clsLDX | modeMEM | szDW, dst: 7, src: 1, off: 8},
		asmInsn{op: clsST | modeMEM | szDW, dst: 6, off: 8, imm: 40},
		movImm(3, 2),
		asmInsn{op: clsSTX | modeATOMIC | szDW, dst: 6, src: 3, off: 8, imm: atomicADD},
		asmInsn{op: clsLDX | modeMEM | szDW, dst: 0, src: 7, off: 8},
		asmInsn{op: clsST | modeMEM | szW, dst: 6, off: 16, imm: 5},
		asmInsn{op: clsLDX | modeMEM | szW, dst: 2, src: 6, off: 16},
		asmInsn{op: clsALU64 | aluADD | srcX, dst: 0, src: 2},
		exit,
	)
	off := 2 * 4096
	ctx := make([]byte, 16)
	binary.LittleEndian.PutUint64(ctx, addrOf(wb[off:]))
	binary.LittleEndian.PutUint64(ctx[8:], addrOf(rb[off:]))
	for _, p := range bothEngines(t, code, Options{Memory: []Memory{{Data: wb, Writable: true}, {Data: rb}}}) {
		clear(wb[off : off+24])
		if r0, err := p.Run(ctx); err != nil || r0 != 47 {
			t.Fatalf("%v: got %d, %v; want 47", p.Engine(), r0, err)
		}
		if v := binary.LittleEndian.Uint64(rb[off+8:]); v != 42 {
			t.Fatalf("%v: the region holds %d, want 42", p.Engine(), v)
		}
	}
	// a store to the read-only mapping: out of bounds, on both engines
	st := assemble(asmInsn{op: clsLDX | modeMEM | szDW, dst: 7, src: 1, off: 8}, asmInsn{op: clsST | modeMEM | szDW, dst: 7, imm: 1}, mov0, exit)
	var msgs []string
	for _, p := range bothEngines(t, st, Options{Memory: []Memory{{Data: rb}}}) {
		_, err := p.Run(ctx)
		if !errors.Is(err, ErrOutOfBounds) {
			t.Fatalf("%v: store to a read-only mapping: %v", p.Engine(), err)
		}
		msgs = append(msgs, err.Error())
	}
	if len(msgs) == 2 && msgs[0] != msgs[1] {
		t.Fatalf("engines disagree: %q", msgs)
	}
}
