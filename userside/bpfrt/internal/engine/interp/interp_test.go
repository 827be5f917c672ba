package interp

import (
	"errors"
	"testing"
	"unsafe"

	"github.com/kushm/kushm/userside/bpfrt/internal/isa"
)

type hostFunc func(idx int, r *[16]uint64) error

func (f hostFunc) CallHelper(idx int, r *[16]uint64) error { return f(idx, r) }

func machine(insns []isa.Insn, h Host) *Machine {
	m := &Machine{Insns: insns, Funcs: []isa.Func{{Start: 0, End: len(insns)}}, MaxBack: 1000, Host: h}
	stk := unsafe.Pointer(&m.Stack[0])
	m.Regions = []Region{{Writable: true}, {Start: uint64(uintptr(stk)), Size: uint64(len(m.Stack)), Base: stk, Writable: true}}
	return m
}

// TestMachine: a helper through the Host, a context load, an access
// outside every region and an endless loop, each with its result.
func TestMachine(t *testing.T) {
	// r0 = helper 3(r1 = 5); r0 += *(u8 *)(ctx + 1); exit
	prog := []isa.Insn{
		{Op: isa.OpMov64X, Dst: 6, Src: 1},
		{Op: isa.OpMov64K, Dst: 1, Imm: 5},
		{Op: isa.OpCall, Jt: 3},
		{Op: isa.OpLdxCtxB, Dst: 2, Src: 6, Off: 1, Imm: 2},
		{Op: isa.OpAdd64X, Dst: 0, Src: 2},
		{Op: isa.OpExit},
	}
	m := machine(prog, hostFunc(func(idx int, r *[16]uint64) error {
		if idx != 3 {
			return errors.New("wrong helper")
		}
		r[0] = r[1] * 10
		return nil
	}))
	if r0, err := m.Run([]byte{0, 7}); err != nil || r0 != 57 {
		t.Fatalf("r0=%d err=%v, want 57", r0, err)
	}
	if _, err := m.Run([]byte{0}); !errors.Is(err, ErrOutOfBounds) {
		t.Fatalf("short context: %v", err)
	}
	wild := machine([]isa.Insn{{Op: isa.OpLddw, Dst: 1, Imm: 0x1000}, {}, {Op: isa.OpLdxDW, Dst: 0, Src: 1}, {Op: isa.OpExit}}, nil)
	var re *RuntimeError
	if _, err := wild.Run(nil); !errors.As(err, &re) || !errors.Is(err, ErrOutOfBounds) || re.PC != 2 {
		t.Fatalf("wild load: %v", err)
	}
	loop := machine([]isa.Insn{{Op: isa.OpMov64K}, {Op: isa.OpBack, Size: isa.OpJa, Off: 1, Jt: 1}, {Op: isa.OpExit}}, nil)
	if _, err := loop.Run(nil); !errors.Is(err, ErrBudget) {
		t.Fatalf("loop: %v", err)
	}
}
