package bpfrt

import (
	"fmt"

	"golang.org/x/sys/cpu"

	"github.com/kushm/kushm/userside/bpfrt/internal/engine/amd64"
)

// Engine selects how a program runs.
type Engine int

const (
	// EngineAuto is the JIT where there is one (amd64 Linux), else the
	// interpreter.
	EngineAuto Engine = iota
	// EngineInterp is the interpreter.
	EngineInterp
	// EngineJIT is the amd64 JIT; loading fails with ErrNotSupported
	// elsewhere.
	EngineJIT
)

func (e Engine) String() string {
	switch e {
	case EngineInterp:
		return "interp"
	case EngineJIT:
		return "jit"
	}
	return "auto"
}

// ParseEngine reads "interp", "jit" or "auto" (the CLI's --engine).
func ParseEngine(s string) (Engine, error) {
	switch s {
	case "interp":
		return EngineInterp, nil
	case "jit":
		return EngineJIT, nil
	case "auto", "":
		return EngineAuto, nil
	}
	return 0, fmt.Errorf("engine %q: want interp, jit or auto: %w", s, ErrNotSupported)
}

const amd64Supported = amd64.Supported

// jitAVX2: the JIT may compile runs of four filter predicates to one
// AVX2 compare (amd64.Options.AVX2); x/sys/cpu checks both the processor
// and the kernel's saving of the ymm state. The tests turn it off to
// compare both forms.
var jitAVX2 = cpu.X86.HasAVX2

// Engine is the engine the program runs on: EngineInterp or EngineJIT.
func (p *Program) Engine() Engine {
	if p.code != nil {
		return EngineJIT
	}
	return EngineInterp
}

// testEngine, when set by the tests, replaces EngineAuto: every test of
// the package runs once per engine (TestMain).
var testEngine Engine

// As returns the program on engine e: p itself when it already runs
// there, else a copy sharing p's instructions, helpers and maps.
func (p *Program) As(e Engine) (*Program, error) {
	if e == EngineAuto {
		if amd64.Supported {
			e = EngineJIT
		} else {
			e = EngineInterp
		}
	}
	if p.Engine() == e {
		return p, nil
	}
	q := &Program{Name: p.Name, insns: p.insns, helpers: p.helpers, maps: p.maps,
		memory: p.memory, maxBack: p.maxBack, nRegion: p.nRegion, volatile: p.volatile, plain: p.plain, ifuncs: p.ifuncs}
	if err := q.compile(e); err != nil {
		return nil, err
	}
	return q, nil
}

// compile runs the JIT when e asks for it (or allows it and there is one).
func (p *Program) compile(e Engine) error {
	plain := p.plain
	if e == EngineInterp || (e == EngineAuto && !amd64.Supported) {
		return nil
	}
	if !amd64.Supported {
		return fmt.Errorf("load: jit: %w on this platform", ErrNotSupported)
	}
	in := plain
	fs := p.ifuncs
	o := amd64.Options{Regions: p.nRegion, StackBytes: MaxCallDepth * StackSize, Volatile: p.volatile, AVX2: jitAVX2}
	for hi, h := range p.helpers {
		if !h.inlineLookup {
			continue
		}
		l := &amd64.InlineLookup{Helper: int32(hi)}
		for mi, m := range p.maps {
			if am, ok := m.(*ArrayMap); ok && am.valueSize > 0 && am.n > 0 {
				l.Maps = append(l.Maps, amd64.ArrayMap{Handle: mapHandle(mi), Base: am.base(), Stride: uint32(am.stride), N: uint32(am.n)})
			}
		}
		o.Lookup = l
	}
	prog, err := amd64.Compile(in, fs, o)
	if err != nil {
		return fmt.Errorf("load: %w: %w", ErrInternal, err)
	}
	code, err := amd64.Map(prog)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	p.code = code
	return nil
}

// jitExits serves the code's exits to Go (helpers, atomics) until it
// returns, and turns fault exits into the interpreter's errors. A panic
// in a helper becomes an ErrInternal run error, as on the interpreter.
func (vm *VM) jitExits(exit uint64) (ret uint64, err error) {
	c, code := &vm.jc, vm.code
	defer func() {
		c.Depth = 0 // a run that stopped inside a call starts the next at the top
		if x := recover(); x != nil {
			ret, err = 0, panicError(x)
		}
	}()
	var r0 uint64
	for {
		c.Exit = exit
		switch exit {
		case amd64.ExitReturn:
			return r0, nil
		case amd64.ExitHelper:
			var r [16]uint64
			copy(r[:11], c.Regs[:])
			if err := vm.callHelper(int(c.Arg), &r); err != nil {
				return 0, &RuntimeError{PC: int(c.PC), Err: fmt.Errorf("%w: %w", ErrHelper, err)}
			}
			copy(c.Regs[:], r[:11])
		case amd64.ExitMisaligned:
			return 0, &RuntimeError{PC: int(c.PC), Err: fmt.Errorf("%w: atomic access of %d bytes at %#x", ErrMisaligned, vm.p.insns[c.PC].Size, c.Addr)}
		case amd64.ExitFault:
			if pc := code.FaultPC(c); pc >= 0 && vm.p.insns[pc].Op == opAtomic {
				return 0, &RuntimeError{PC: pc, Err: fmt.Errorf("%w: atomic access of %d bytes at %#x", ErrOutOfBounds, c.Arg&0xff, c.Addr)}
			}
			what := "load"
			if c.Arg>>8 != 0 {
				what = "store"
			}
			return 0, vm.fault(code.FaultPC(c), ErrOutOfBounds, "%s of %d bytes at %#x", what, c.Arg&0xff, c.Addr)
		case amd64.ExitStep:
			// an access to a volatile region: performed here, in Go, where
			// a fault (the file shrank) is recoverable
			pc := code.Step(c)
			if pc < 0 {
				return 0, vm.fault(-1, ErrInternal, "jit step at %#x", c.RetAddr)
			}
			var r [16]uint64
			copy(r[:11], c.Regs[:])
			if err := vm.m.Step(&vm.p.plain[pc], &r); err != nil {
				return 0, &RuntimeError{PC: pc, Err: err}
			}
			copy(c.Regs[:], r[:11])
		case amd64.ExitBudget:
			return 0, vm.fault(int(c.PC), ErrBudget, "more than %d instructions", vm.p.maxBack)
		case amd64.ExitDepth:
			return 0, vm.fault(int(c.PC), ErrCallDepth, "more than %d frames", MaxCallDepth)
		default:
			return 0, vm.fault(-1, ErrInternal, "jit exit %d", exit)
		}
		r0, exit = code.Resume(c)
	}
}
