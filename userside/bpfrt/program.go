package bpfrt

import (
	"io"
	"sync"
	"sync/atomic"

	"github.com/kushm/kushm/internal/errs"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/userside/bpfrt/internal/engine/amd64"
	"github.com/kushm/kushm/userside/bpfrt/internal/engine/interp"
	"github.com/kushm/kushm/userside/bpfrt/internal/isa"
	"github.com/kushm/kushm/userside/bpfrt/internal/verifier"
)

// progEnv is the program's helpers and maps as the checker sees them.
type progEnv struct{ p *Program }

func (e progEnv) HelperIndex(id int32) (int, bool)     { return e.p.helperIndex(id) }
func (e progEnv) HelperByName(name string) (int, bool) { return e.p.helperByName(name) }
func (e progEnv) Helper(i int) verifier.HelperSig {
	return verifier.HelperSig{Name: e.p.helpers[i].Name, Args: e.p.helpers[i].Args}
}
func (e progEnv) NumMaps() int           { return len(e.p.maps) }
func (e progEnv) MapHandle(i int) uint64 { return mapHandle(i) }
func (e progEnv) ArrayBase(i int) uint64 { return e.p.maps[i].(*ArrayMap).base() }
func (e progEnv) ArrayBytes(i int) (int, bool) {
	m, ok := e.p.maps[i].(*ArrayMap)
	if !ok {
		return 0, false
	}
	return len(m.data), true
}

// Sentinel errors. Load errors wrap ErrInvalidProgram (as a *VerifierError
// naming the instruction and the reason); run errors are *RuntimeError
// wrapping one of the run-time sentinels.
var (
	ErrInvalidProgram = verifier.ErrInvalidProgram
	ErrOutOfBounds    = interp.ErrOutOfBounds // the engines' run-time sentinels
	ErrMisaligned     = interp.ErrMisaligned
	ErrBudget         = interp.ErrBudget
	ErrCallDepth      = interp.ErrCallDepth
	ErrHelper         = interp.ErrHelper
	ErrInternal       = interp.ErrInternal
	ErrNotSupported   = errs.ErrNotSupported // kushm's one family (internal/errs)
)

// VerifierError is why a program was refused at load time: PC (the
// instruction, -1 for the whole program), Insn (decoded) and Reason; it
// wraps ErrInvalidProgram (the checker's type, internal/verifier).
type VerifierError = verifier.VerifierError

// Limits of the safety model.
const (
	// MaxInstructions is the largest program accepted, in 8-byte slots.
	MaxInstructions = verifier.MaxInstructions
	// StackSize is the stack of one frame, in bytes.
	StackSize = isa.StackSize
	// MaxCallDepth is the number of frames (main program included).
	MaxCallDepth = isa.MaxCallDepth
	// DefaultBudget is the default instruction budget of one run.
	DefaultBudget = 1 << 26
)

// rawInsn is one instruction as written (internal/verifier's).
type rawInsn = verifier.RawInsn

func decodeRaw(code []byte) ([]rawInsn, error) { return verifier.Decode(code) }

// RuntimeError is why a run stopped early: PC (the instruction, -1 if
// unknown), Err (the sentinel, which Unwrap returns) and Detail. Both
// engines return it (it is the interpreter engine's type).
type RuntimeError = interp.RuntimeError

// Memory is extra memory a program may access through pointers (a mapped
// shared region, an application buffer). Pointers into it reach programs
// through helpers or the context.
type Memory struct {
	Data     []byte
	Writable bool
}

// Options configure loading. The zero value is usable.
type Options struct {
	// Helpers are added to the standard helpers; one with the ID or Name of
	// a standard helper replaces it.
	Helpers []Helper
	// Maps resolve map references by name (ELF objects); maps not given
	// here are created from the object's definitions.
	Maps map[string]Map
	// Memory the programs may access besides context, stack and maps.
	Memory []Memory
	// Budget bounds the instructions of one run (0: DefaultBudget). It
	// is charged at each backward jump (the length of the loop it
	// closes) and at each bpf-to-bpf call (the length of the callee);
	// forward code is free. Instructions executed ≤ Budget + program
	// length.
	Budget uint64
	// TraceOutput receives bpf_trace_printk output (nil: discarded).
	TraceOutput io.Writer
	// Kushm implements the bpf_kushm_* kfuncs (nil: they fail to resolve).
	Kushm Kushm
	// Engine runs the program: EngineAuto (the JIT where there is one,
	// amd64 Linux, else the interpreter), EngineInterp or EngineJIT.
	Engine Engine
	// MaskShifts accepts shifts by an immediate outside 0..width-1 and
	// masks the count, as RFC 9669 defines (the conformance suite's
	// expectation, uBPF's behaviour). The default refuses them at load
	// time, as the Linux verifier does, so one program behaves the same in
	// the kernel and here. Register shift counts are always masked.
	MaskShifts bool
}

// Program is a checked, pre-decoded program. It is immutable and safe for
// concurrent use; each run needs a VM (NewVM), or use Run.
type Program struct {
	Name    string
	insns   []insn
	helpers []*Helper
	maps    []Map
	memory  []Memory
	maxBack uint64
	pool    sync.Pool
	hotBusy atomic.Bool // hot is in use
	hot     *VM         // the VM at hand (guarded by hotBusy)
	nRegion int         // entries of a VM's region table
	// volatile marks the table's entries over memory that may shrink
	// under its mapping (shm.Volatile: a region file's mapping): the
	// JIT's code never accesses them (amd64.Options.Volatile)
	volatile []bool
	plain    []insn      // instructions before fusion: the JIT's input
	ifuncs   []isa.Func  // funcs as the engines see them
	code     *amd64.Code // compiled code, nil on the interpreter
}

func (p *Program) helperIndex(id int32) (int, bool) {
	if id <= 0 {
		return 0, false
	}
	for i, h := range p.helpers {
		if h.ID == id {
			return i, true
		}
	}
	return 0, false
}

func (p *Program) helperByName(name string) (int, bool) {
	for i, h := range p.helpers {
		if h.Name == name {
			return i, true
		}
	}
	return 0, false
}

// Len is the number of 8-byte instruction slots.
func (p *Program) Len() int { return len(p.insns) }

// Run runs the program on the VM the program keeps at hand, or on a
// pooled one when another goroutine is using it.
func (p *Program) Run(ctx []byte) (uint64, error) {
	// One VM is kept at hand for the common single-caller case (one
	// compare-and-swap to take it, one store to give it back); callers
	// running at the same time draw from the pool.
	if p.hotBusy.CompareAndSwap(false, true) {
		vm := p.hot
		if vm == nil {
			vm = p.NewVM()
			p.hot = vm
		}
		r, err := vm.Run(ctx)
		p.hotBusy.Store(false)
		return r, err
	}
	vm, _ := p.pool.Get().(*VM)
	if vm == nil {
		vm = p.NewVM()
	}
	r, err := vm.Run(ctx)
	p.pool.Put(vm)
	return r, err
}

// LoadRaw checks raw eBPF code (8-byte little-endian instructions) and
// returns the program. Map references (lddw src 1/2) index maps, in order.
func LoadRaw(code []byte, maps []Map, opts *Options) (*Program, error) {
	raw, err := decodeRaw(code)
	if err != nil {
		return nil, err
	}
	return load(raw, maps, nil, opts)
}

func load(raw []rawInsn, maps []Map, kfuncs []string, opts *Options) (*Program, error) {
	if opts == nil {
		opts = &Options{}
	}
	p := &Program{maps: maps, memory: opts.Memory, maxBack: opts.Budget}
	if p.maxBack == 0 {
		p.maxBack = DefaultBudget
	}
	p.helpers = buildHelpers(opts)
	res, err := verifier.Check(raw, progEnv{p}, verifier.Options{Kfuncs: kfuncs, MaskShifts: opts.MaskShifts})
	if err != nil {
		return nil, err
	}
	p.insns, p.plain, p.ifuncs = res.Insns, res.Plain, res.Funcs
	p.volatile = []bool{false, false} // context (checked per run), stack
	for _, m := range p.maps {
		if b := m.memory(); len(b) > 0 {
			p.volatile = append(p.volatile, shm.Volatile(b))
		}
	}
	for _, m := range p.memory {
		if len(m.Data) > 0 {
			p.volatile = append(p.volatile, shm.Volatile(m.Data))
		}
	}
	p.nRegion = len(p.volatile)
	e := opts.Engine
	if e == EngineAuto && testEngine != EngineAuto {
		e = testEngine
	}
	if err := p.compile(e); err != nil {
		return nil, err
	}
	return p, nil
}
