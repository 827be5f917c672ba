package bpfrt

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sort"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// Collection is the programs and maps of one BPF ELF object.
type Collection struct {
	Programs map[string]*Program
	Maps     map[string]Map
	// Specs are the parsed specs, for running the same programs in the
	// kernel (KernelRun).
	Specs *ebpf.CollectionSpec
}

// LoadELF parses a clang-compiled BPF object with cilium/ebpf (nothing is
// loaded into the kernel) and checks every program in it.
func LoadELF(path string, opts *Options) (*Collection, error) {
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return LoadCollectionSpec(spec, opts)
}

// LoadELFReader is LoadELF for an object in memory.
func LoadELFReader(r io.ReaderAt, opts *Options) (*Collection, error) {
	spec, err := ebpf.LoadCollectionSpecFromReader(r)
	if err != nil {
		return nil, fmt.Errorf("load object: %w", err)
	}
	return LoadCollectionSpec(spec, opts)
}

// LoadCollectionSpec creates the maps of spec (or takes them from
// opts.Maps by name) and checks every program.
func LoadCollectionSpec(spec *ebpf.CollectionSpec, opts *Options) (*Collection, error) {
	if opts == nil {
		opts = &Options{}
	}
	col := &Collection{Programs: map[string]*Program{}, Maps: map[string]Map{}, Specs: spec}
	names := make([]string, 0, len(spec.Maps))
	for name := range spec.Maps {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if m, ok := opts.Maps[name]; ok {
			col.Maps[name] = m
			continue
		}
		m, err := mapFromSpec(spec.Maps[name])
		if err != nil {
			return nil, fmt.Errorf("map %s: %w", name, err)
		}
		col.Maps[name] = m
	}
	pnames := make([]string, 0, len(spec.Programs))
	for name := range spec.Programs {
		pnames = append(pnames, name)
	}
	sort.Strings(pnames)
	for _, name := range pnames {
		p, err := loadProgramSpec(spec.Programs[name], col.Maps, opts)
		if err != nil {
			return nil, fmt.Errorf("program %s: %w", name, err)
		}
		p.Name = name
		col.Programs[name] = p
	}
	return col, nil
}

func mapFromSpec(ms *ebpf.MapSpec) (Map, error) {
	var t MapType
	switch ms.Type {
	case ebpf.RingBuf:
		return NewRingBufMap(int(ms.MaxEntries))
	case ebpf.Array, ebpf.PerCPUArray:
		t = Array
	case ebpf.Hash, ebpf.PerCPUHash:
		t = Hash
	case ebpf.LRUHash, ebpf.LRUCPUHash:
		t = LRUHash
	default:
		return nil, fmt.Errorf("map type %s: %w", ms.Type, ErrNotSupported)
	}
	m, err := NewMap(MapSpec{Type: t, KeySize: int(ms.KeySize), ValueSize: int(ms.ValueSize), MaxEntries: int(ms.MaxEntries)})
	if err != nil {
		return nil, err
	}
	for _, kv := range ms.Contents {
		key, err := toBytes(kv.Key, m.KeySize())
		if err != nil {
			return nil, fmt.Errorf("initial contents: %w", err)
		}
		val, err := toBytes(kv.Value, m.ValueSize())
		if err != nil {
			return nil, fmt.Errorf("initial contents: %w", err)
		}
		if err := m.Update(key, val, UpdateAny); err != nil {
			return nil, fmt.Errorf("initial contents: %w", err)
		}
	}
	return m, nil
}

func toBytes(v any, size int) ([]byte, error) {
	if b, ok := v.([]byte); ok {
		if len(b) > size {
			return nil, fmt.Errorf("%d bytes for a %d-byte field", len(b), size)
		}
		out := make([]byte, size)
		copy(out, b)
		return out, nil
	}
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, v); err != nil {
		return nil, err
	}
	if buf.Len() != size {
		return nil, fmt.Errorf("%d bytes for a %d-byte field", buf.Len(), size)
	}
	return buf.Bytes(), nil
}

// LoadProgramSpec checks one program of a parsed object, resolving its map
// references against maps by name.
func LoadProgramSpec(ps *ebpf.ProgramSpec, maps map[string]Map, opts *Options) (*Program, error) {
	if opts == nil {
		opts = &Options{}
	}
	p, err := loadProgramSpec(ps, maps, opts)
	if err != nil {
		return nil, err
	}
	p.Name = ps.Name
	return p, nil
}

func loadProgramSpec(ps *ebpf.ProgramSpec, maps map[string]Map, opts *Options) (*Program, error) {
	insns := make(asm.Instructions, len(ps.Instructions))
	copy(insns, ps.Instructions)
	var used []Map
	mapIdx := map[string]int{}
	var kfuncs []string
	kfIdx := map[string]int{}
	for i := range insns {
		ins := &insns[i]
		switch {
		case ins.IsLoadFromMap():
			name := ins.Reference()
			m, ok := maps[name]
			if !ok {
				return nil, fmt.Errorf("instruction %d: map %q: %w", i, name, ErrNotSupported)
			}
			idx, ok := mapIdx[name]
			if !ok {
				idx = len(used)
				used = append(used, m)
				mapIdx[name] = idx
			}
			ins.Constant = int64(uint64(ins.Constant)&^0xffffffff | uint64(idx))
		case ins.IsKfuncCall():
			name := ins.Reference()
			if name == "" {
				return nil, fmt.Errorf("instruction %d: kfunc call without a name: %w", i, ErrInvalidProgram)
			}
			idx, ok := kfIdx[name]
			if !ok {
				idx = len(kfuncs)
				kfuncs = append(kfuncs, name)
				kfIdx[name] = idx
			}
			ins.Constant = int64(idx)
		case ins.OpCode.IsDWordLoad() && ins.Reference() != "" && !ins.IsLoadOfFunctionPointer():
			return nil, fmt.Errorf("instruction %d: reference to %q (ksym or kconfig) is not supported: %w", i, ins.Reference(), ErrNotSupported)
		}
	}
	var buf bytes.Buffer
	if err := insns.Marshal(&buf, binary.LittleEndian); err != nil {
		return nil, fmt.Errorf("encode instructions: %w", err)
	}
	raw, err := decodeRaw(buf.Bytes())
	if err != nil {
		return nil, err
	}
	return load(raw, used, kfuncs, opts)
}
