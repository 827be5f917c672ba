package bpfrt

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// LoadFile loads a program file for the command line: a BPF ELF object
// (starts with \x7fELF), else raw little-endian instructions. It returns
// the collection (raw code becomes one program named "prog").
func LoadFile(path string, opts *Options) (*Collection, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	if bytes.HasPrefix(b, []byte("\x7fELF")) {
		col, err := LoadELFReader(bytes.NewReader(b), opts)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", path, err)
		}
		return col, nil
	}
	p, err := LoadRaw(b, nil, opts)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	p.Name = "prog"
	var insns asm.Instructions
	if insns, err = asm.AppendInstructions(nil, bytes.NewReader(b), binary.LittleEndian, "linux"); err != nil {
		insns = nil
	}
	spec := &ebpf.CollectionSpec{Maps: map[string]*ebpf.MapSpec{}, Programs: map[string]*ebpf.ProgramSpec{}}
	if insns != nil {
		// A syscall program gets the context as raw memory, like here.
		spec.Programs["prog"] = &ebpf.ProgramSpec{Name: "prog", Type: ebpf.Syscall, Flags: 1 << 4 /* BPF_F_SLEEPABLE */, License: "GPL", Instructions: insns}
	}
	return &Collection{Programs: map[string]*Program{"prog": p}, Maps: map[string]Map{}, Specs: spec}, nil
}

// Pick returns the program called name, or the only (else the first by
// name) program when name is empty.
func (c *Collection) Pick(name string) (*Program, error) {
	if name != "" {
		if p := c.Programs[name]; p != nil {
			return p, nil
		}
		return nil, fmt.Errorf("no program %q (have %s)", name, strings.Join(c.names(), ", "))
	}
	ns := c.names()
	if len(ns) == 0 {
		return nil, fmt.Errorf("no programs")
	}
	return c.Programs[ns[0]], nil
}

func (c *Collection) names() []string {
	var ns []string
	for n := range c.Programs {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

// EngineResult is one engine's result in a side-by-side run.
type EngineResult struct {
	Engine     string  `json:"engine"`
	R0         uint64  `json:"r0"`
	NsPerEvent float64 `json:"ns_per_event"`
	Runs       int     `json:"runs"`
	Error      string  `json:"error,omitempty"`
	Note       string  `json:"note,omitempty"`
}

// SideBySide runs program p of col on the given engines (none given: the
// interpreter and, where there is one, the JIT), then in the kernel
// through BPF_PROG_TEST_RUN where bpf() is permitted. repeat is the number
// of timed runs (0: one untimed run).
func SideBySide(col *Collection, p *Program, ctx []byte, repeat int, engines ...Engine) []EngineResult {
	var out []EngineResult
	if len(engines) == 0 {
		engines = []Engine{EngineInterp}
		if amd64Supported {
			engines = append(engines, EngineJIT)
		}
	}
	for _, e := range engines {
		res := EngineResult{Engine: e.String(), Runs: repeat}
		q, err := p.As(e)
		if err != nil {
			res.Error = err.Error()
			out = append(out, res)
			continue
		}
		vm := q.NewVM()
		buf := append([]byte(nil), ctx...)
		r0, err := vm.Run(buf)
		if err != nil {
			res.Error = err.Error()
		} else {
			res.R0 = r0
			if repeat > 0 {
				start := time.Now()
				for i := 0; i < repeat; i++ {
					if _, err := vm.Run(buf); err != nil {
						// a run that failed (the region file shrank
						// under the mapping): report it, stop timing
						res.Error = err.Error()
						break
					}
				}
				res.NsPerEvent = float64(time.Since(start).Nanoseconds()) / float64(repeat)
			}
		}
		out = append(out, res)
	}

	kres := EngineResult{Engine: "kernel", Runs: repeat}
	switch {
	case col.Specs == nil || col.Specs.Programs[p.Name] == nil:
		kres.Error = "no program spec for the kernel"
	default:
		k, err := LoadKernel(col.Specs)
		if err != nil {
			kres.Error = err.Error()
			break
		}
		defer k.Close()
		n := repeat
		if n < 1 {
			n = 1
		}
		kr, err := k.Run(p.Name, append([]byte(nil), ctx...), n)
		if err != nil {
			kres.Error = err.Error()
			break
		}
		kres.R0 = uint64(kr.Ret)
		if repeat > 0 {
			kres.NsPerEvent = kr.NsPerRun
		}
		if !kr.InKernelTiming && repeat > 0 {
			kres.Note = "one bpf(BPF_PROG_TEST_RUN) per event: includes the system call"
		}
	}
	return append(out, kres)
}

// ConformancePlugin runs one test of the bpf_conformance runner's plugin
// protocol on engine e: mem is the memory as space-separated hex bytes
// (empty for none), program the program as space-separated hex bytes. It
// returns r0. Shifts by an out-of-range immediate are masked (RFC 9669
// mode, Options.MaskShifts), as the suite expects.
func ConformancePlugin(mem string, program io.Reader, e Engine) (uint64, error) {
	m, err := hexBytes(mem)
	if err != nil {
		return 0, fmt.Errorf("memory: %w", err)
	}
	src, err := io.ReadAll(program)
	if err != nil {
		return 0, fmt.Errorf("read program: %w", err)
	}
	code, err := hexBytes(string(src))
	if err != nil {
		return 0, fmt.Errorf("program: %w", err)
	}
	p, err := LoadRaw(code, nil, &Options{Engine: e, MaskShifts: true})
	if err != nil {
		return 0, err
	}
	return p.NewVM().Run(m)
}

func hexBytes(s string) ([]byte, error) {
	s = strings.Join(strings.Fields(s), "")
	return hex.DecodeString(s)
}
