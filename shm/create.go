package shm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/sys"
)

// ColumnSpec describes one field of a section element for the schema:
// an expanded abi.ColumnDecl (the well-known sections' come from
// abi.Columns; Create refuses a template, one with Each set).
type ColumnSpec = abi.ColumnDecl

// SectionSpec describes a section for Create. Packages that own a kind
// (atomicarr.Spec, rcuhash.Spec) build these; Size is in bytes and is
// rounded up to a page.
type SectionSpec struct {
	Name     string
	Kind     uint32
	Flags    uint32
	Size     uint64
	ElemSize uint32
	Count    uint32
	Aux0     uint32
	Aux1     uint32
	Columns  []ColumnSpec
	// Init writes the section's initial contents into b (zeroed, Size
	// rounded up to a page) before the region is published.
	Init func(b []byte) error
}

// Layout is what a producer asks Create for.
type Layout struct {
	NCPUs        int
	ProducerKind uint32
	ProducerName string
	// HeartbeatPeriod is the longest gap the producer promises between
	// heartbeats; readers call it stale after 3x (at least 1 s).
	HeartbeatPeriod time.Duration
	Sections        []SectionSpec
}

// CreateOptions control the files Create makes.
type CreateOptions struct {
	// Mode of the region file (default 0640). World-writable modes are
	// refused.
	Mode fs.FileMode
	// ControlMode of the companion .ctl file (default 0660).
	ControlMode fs.FileMode
	// GID, when ≥ 0, is the group of both files (default: the creator's).
	GID int
	// InlineControl keeps user-writable sections inside the region
	// instead of the companion file (memfd regions, tests).
	InlineControl bool
}

// ControlSpec is the spec of the user-writable control section with the
// producer's initial values.
func ControlSpec() SectionSpec {
	return SectionSpec{
		Name: abi.SecNameControl, Kind: abi.SecControl, Flags: abi.SecFlagUserWritable,
		Size: abi.ControlSize,
		Init: func(b []byte) error {
			le.PutUint32(b[abi.ControlMagicOff:], abi.ControlMagic)
			le.PutUint32(b[abi.ControlVersionOff:], 1)
			return nil
		},
	}
}

// TextSpec is the spec of a text section holding s.
func TextSpec(name, s string) SectionSpec {
	return SectionSpec{
		Name: name, Kind: abi.SecText, Flags: abi.SecFlagProducer, Size: uint64(len(s)) + 1,
		Init: func(b []byte) error { copy(b, s); return nil },
	}
}

type plan struct {
	hdr      []byte
	secs     []abi.Section
	specs    []SectionSpec
	schema   []ColumnSpec
	size     uint64
	ctlSize  uint64
	pageSize uint64
}

func roundUp(v, a uint64) uint64 { return (v + a - 1) / a * a }

func makePlan(l Layout, inlineControl bool) (*plan, error) {
	if l.NCPUs <= 0 || l.NCPUs > abi.MaxCPUs {
		return nil, fmt.Errorf("ncpus %d out of range", l.NCPUs)
	}
	page := uint64(sys.PageSize())
	p := &plan{pageSize: page}
	// The schema goes first; count its columns.
	var ncols int
	for _, s := range l.Sections {
		ncols += len(s.Columns)
	}
	if ncols > abi.MaxColumns {
		return nil, fmt.Errorf("%d columns > %d", ncols, abi.MaxColumns)
	}
	specs := append([]SectionSpec{{
		Name: abi.SecNameSchema, Kind: abi.SecSchema, Flags: abi.SecFlagProducer,
		Size: uint64(max(ncols, 1)) * abi.ColumnEntrySize, ElemSize: abi.ColumnEntrySize, Count: uint32(ncols),
	}}, l.Sections...)
	if len(specs) > abi.MaxSections {
		return nil, fmt.Errorf("%d sections > %d", len(specs), abi.MaxSections)
	}
	off, ctlOff := uint64(abi.HeaderAreaSize), uint64(0)
	seen := map[string]bool{}
	for i, s := range specs {
		if s.Name == "" || len(s.Name) >= abi.SectionNameLen || seen[s.Name] {
			return nil, fmt.Errorf("section name %q empty, too long or duplicate", s.Name)
		}
		seen[s.Name] = true
		if s.Size == 0 || uint64(s.ElemSize)*uint64(s.Count) > s.Size {
			return nil, fmt.Errorf("section %q: size %d too small", s.Name, s.Size)
		}
		size := roundUp(s.Size, page)
		e := abi.Section{Kind: s.Kind, Flags: s.Flags, Size: size, ElemSize: s.ElemSize, Count: s.Count,
			Aux0: s.Aux0, Aux1: s.Aux1}
		copy(e.Name[:], s.Name)
		if s.Flags&abi.SecFlagUserWritable != 0 && !inlineControl {
			e.Flags |= abi.SecFlagExternal
			e.Offset = ctlOff
			ctlOff += size
		} else {
			e.Offset = off
			off += size
		}
		for _, c := range s.Columns {
			if c.Each != "" {
				return nil, fmt.Errorf("section %q: column template for catalogue %q: expand it (abi.Columns)", s.Name, c.Each)
			}
		}
		if i > 0 && len(s.Columns) > 0 {
			e.ColFirst = uint32(len(p.schema))
			e.ColCount = uint32(len(s.Columns))
			p.schema = append(p.schema, s.Columns...)
		}
		p.secs = append(p.secs, e)
	}
	p.specs = specs
	p.size, p.ctlSize = off, ctlOff
	return p, nil
}

// putTable writes the plan's section table into the header page h.
func (p *plan) putTable(h []byte) {
	for i, s := range p.secs {
		if err := abi.Encode(h[abi.SectionTableOff+i*abi.SectionEntrySize:], &s); err != nil {
			panic(err) // the table fits the header page: plan checked MaxSections
		}
	}
}

// write lays the plan out in mem (region) and ctl (companion), leaving
// magic 0 and state starting.
func (p *plan) write(l Layout, mem, ctl []byte) error {
	h := mem[:abi.HeaderAreaSize]
	hdr := abi.Header{ // Magic stays 0 until publication
		ABIMajor: abi.ABIMajor, ABIMinor: abi.ABIMinor, HeaderSize: abi.HeaderAreaSize,
		RegionSize: p.size, PageSize: uint32(p.pageSize), NCPUs: uint32(l.NCPUs),
		ProducerKind: l.ProducerKind, ProducerPID: uint32(os.Getpid()), ProducerPIDNS: sys.PidNamespace(),
		CreatedRealNs: uint64(time.Now().UnixNano()), HeartbeatNs: sys.MonotonicNs(),
		HeartbeatPeriodNs: uint64(l.HeartbeatPeriod), State: abi.StateStarting,
		SectionTableOff: abi.SectionTableOff, SectionCount: uint32(len(p.secs)),
		SectionEntrySize: abi.SectionEntrySize, ColumnEntrySize: abi.ColumnEntrySize, Generation: 1,
	}
	if len(l.ProducerName) > len(hdr.ProducerName) {
		return fmt.Errorf("producer name: %q longer than %d bytes", l.ProducerName, len(hdr.ProducerName))
	}
	copy(hdr.ProducerName[:], l.ProducerName)
	if err := abi.Encode(h, &hdr); err != nil {
		return err
	}
	p.putTable(h)
	schema := mem[p.secs[0].Offset:]
	for i, c := range p.schema {
		e, err := c.Entry()
		if err != nil {
			return err
		}
		if err := abi.Encode(schema[i*abi.ColumnEntrySize:], &e); err != nil {
			return err
		}
	}
	for i, s := range p.secs {
		spec := p.specs[i]
		if spec.Init == nil {
			continue
		}
		var b []byte
		if s.Flags&abi.SecFlagExternal != 0 {
			b = ctl[s.Offset : s.Offset+s.Size]
		} else {
			b = mem[s.Offset : s.Offset+s.Size]
		}
		if err := spec.Init(b); err != nil {
			return fmt.Errorf("init section %q: %w", spec.Name, err)
		}
	}
	return nil
}

// Create makes a new region at path for a producer and maps it
// read-write. The files are built under temporary names and renamed into
// place, so a reader never sees a half-built region and readers of an
// older region at path keep their (now stale) mapping. An existing path
// that is not a kushm region is refused with ErrExists. The region is
// published in state running; the producer must call Heartbeat at least
// every Layout.HeartbeatPeriod and Stop when done.
func Create(path string, l Layout, opts CreateOptions) (*Region, error) {
	r, err := create(path, l, opts)
	if err != nil {
		return nil, fmt.Errorf("create region %s: %w", path, err)
	}
	return r, nil
}

func create(path string, l Layout, opts CreateOptions) (*Region, error) {
	if opts.Mode == 0 {
		opts.Mode = 0o640
	}
	if opts.ControlMode == 0 {
		opts.ControlMode = 0o660
	}
	if opts.Mode&0o002 != 0 || opts.ControlMode&0o002 != 0 {
		return nil, errors.New("refusing a world-writable region or control file")
	}
	for _, p := range []string{path, path + ".ctl"} {
		if err := checkTarget(p); err != nil {
			return nil, err
		}
	}
	p, err := makePlan(l, opts.InlineControl)
	if err != nil {
		return nil, err
	}
	mk := func(name string, size uint64, mode fs.FileMode) (*os.File, []byte, error) {
		return makeFile(name, size, mode, opts.GID)
	}
	f, mem, err := mk(path, p.size, opts.Mode)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := &Region{path: path, mem: mem, writable: true}
	tmps := []string{f.Name()}
	ok := false
	defer func() {
		if !ok {
			r.unmap()
			for _, t := range tmps {
				os.Remove(t)
			}
		}
	}()
	var cf *os.File
	if p.ctlSize > 0 {
		cf, r.ctl, err = mk(path+".ctl", p.ctlSize, opts.ControlMode)
		if err != nil {
			return nil, err
		}
		tmps = append(tmps, cf.Name())
		r.ctlRW = true
		defer func() {
			if !ok {
				cf.Close()
			}
		}()
	}
	if err := p.write(l, mem, r.ctl); err != nil {
		return nil, err
	}
	// Publish: magic last (guarantee: a reader that sees the magic sees
	// the whole header, section table and initial contents).
	atomic.StoreUint64(r.u64(0), abi.Magic)
	atomic.StoreUint32(r.u32(abi.HeaderStateOff), abi.StateRunning)
	if cf != nil {
		if err := replace(cf.Name(), path+".ctl"); err != nil {
			return nil, err
		}
	}
	if err := replace(f.Name(), path); err != nil {
		return nil, err
	}
	if err := r.load(); err != nil {
		return nil, fmt.Errorf("self-check: %w", err)
	}
	if cf != nil {
		if r.pctl, err = keepControl(cf, p.ctlSize, opts); err != nil {
			return nil, err
		}
	}
	register(r)
	ok = true
	return r, nil
}

// load decodes and validates the producer's own mapping (header, section
// table, schema) and narrows a mapped companion file to its control
// section.
func (r *Region) load() error {
	h, err := ParseHeader(r.mem, uint64(len(r.mem)))
	if err != nil {
		return err
	}
	if r.sections, err = ParseSections(r.mem, h, uint64(len(r.ctl))); err != nil {
		return err
	}
	r.hdr = h
	r.ctlIdx = -1
	if ci := controlIndex(r.sections); ci >= 0 && r.ctl != nil {
		s := r.sections[ci]
		if !s.External() {
			return corrupt("control section %q inline, but a control file is mapped", s.Name)
		}
		r.ctl, r.ctlIdx = r.ctl[s.Offset:s.Offset+s.Size:s.Offset+s.Size], ci
	}
	return nil
}

// checkTarget decides whether Create may put a new file at path. A kushm
// region (or control file) of this user is replaced; a file of this user
// that is not one is kept (ErrExists: a wrong --region must not clobber
// it). A file of another user in a shared sticky directory (/dev/shm) is
// a squatter: replaced when this process may (root), else refused with an
// error naming it. Elsewhere another user's file is refused.
func checkTarget(path string) error {
	st, err := sys.Lstat(path)
	if err != nil {
		return nil // nothing there (or not reachable: the create says why)
	}
	typ := st.Mode & sys.TypeMask
	mine := st.UID == uint32(sys.Geteuid())
	switch {
	case typ == sys.TypeDir:
		return fmt.Errorf("%w: %s is a directory of %s (remove it or choose another --region)", ErrExists, path, ownerName(st.UID))
	case mine && typ == sys.TypeReg && isRegionFile(path):
		return nil
	case mine:
		return fmt.Errorf("%w: %s is a %s that is not a kushm region (remove it or choose another --region)", ErrExists, path, typeName(st.Mode))
	case stickyShared(filepath.Dir(path)) && sys.Geteuid() == 0:
		return nil // a squatter's file: renamed over
	case stickyShared(filepath.Dir(path)):
		return fmt.Errorf("%w: %s is a %s owned by %s, planted in the shared directory %s before this producer started: remove it (as root or that user) or choose another --region",
			ErrExists, path, typeName(st.Mode), ownerName(st.UID), filepath.Dir(path))
	}
	return fmt.Errorf("%w: %s is a %s owned by %s, not by this user (remove it or choose another --region)", ErrExists, path, typeName(st.Mode), ownerName(st.UID))
}

// replace renames tmp over path, naming whoever holds path when that is
// refused (a squatter that appeared after checkTarget).
func replace(tmp, path string) error {
	err := os.Rename(tmp, path)
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	if st, lerr := sys.Lstat(path); lerr == nil {
		return fmt.Errorf("%w: %s is a %s owned by %s: %v", ErrExists, path, typeName(st.Mode), ownerName(st.UID), err)
	}
	return err
}

// isRegionFile reports whether the regular file at path holds a kushm
// region, or a control file (any version). It does not block.
func isRegionFile(path string) bool {
	fd, st, err := openChecked(path, sys.ORdonly)
	if err != nil {
		return false
	}
	defer sys.Close(fd)
	if st.Mode&sys.TypeMask != sys.TypeReg {
		return false
	}
	var b [8]byte
	if n, err := sys.Pread(fd, b[:], 0); err != nil || n != len(b) {
		return st.Size == 0 // an empty control file (truncated)
	}
	m := le.Uint64(b[:])
	return m == abi.Magic || m == 0 || uint32(m) == abi.ControlMagic // 0: a region that was never published
}

// Heartbeat records that the producer is alive (CLOCK_MONOTONIC now).
func (r *Region) Heartbeat() error {
	if !r.writable {
		return ErrReadOnly
	}
	atomic.StoreUint64(r.u64(abi.HeaderHeartbeatOff), sys.MonotonicNs())
	return nil
}

// AddControlRejected adds n to the header's count of control values the
// producer refused (ABI 1.2) and returns the new count. The header is
// read-only to every reader, so users cannot overwrite it.
func (r *Region) AddControlRejected(n uint64) uint64 {
	if !r.writable {
		return 0
	}
	return atomic.AddUint64(r.u64(abi.HeaderControlRejectedOff), n)
}

// Stop marks the region stopped cleanly; readers see a stale producer and
// the final data. It does not unmap (call Close).
func (r *Region) Stop() error {
	if !r.writable {
		return ErrReadOnly
	}
	atomic.StoreUint32(r.u32(abi.HeaderStateOff), abi.StateStopped)
	return nil
}

// Adopt maps an existing region read-write for a restarted producer when
// its layout is exactly what l would create; it bumps the generation,
// takes over the pid and marks it running. Otherwise it returns an error
// and the producer should Create a new one.
func Adopt(path string, l Layout, opts CreateOptions) (*Region, error) {
	r, err := adopt(path, l, opts)
	if err != nil {
		return nil, fmt.Errorf("adopt region %s: %w", path, err)
	}
	return r, nil
}

func adopt(path string, l Layout, opts CreateOptions) (*Region, error) {
	p, err := makePlan(l, opts.InlineControl)
	if err != nil {
		return nil, err
	}
	fd, err := openOwn(path, p.size)
	if err != nil {
		return nil, err
	}
	defer sys.Close(fd)
	mem, err := sys.Mmap(fd, 0, int(p.size), sys.ProtRead|sys.ProtWrite)
	if err != nil {
		return nil, err
	}
	r := &Region{path: path, mem: mem, writable: true}
	ok := false
	defer func() {
		if !ok {
			r.unmap()
		}
	}()
	h, err := ParseHeader(mem, uint64(len(mem)))
	if err != nil {
		return nil, err
	}
	if int(h.NCPUs) != l.NCPUs || h.ProducerKind != l.ProducerKind || h.SectionCount != uint32(len(p.secs)) {
		return nil, fmt.Errorf("layout differs (ncpus %d, kind %d, %d sections): %w", h.NCPUs, h.ProducerKind, h.SectionCount, ErrCorrupt)
	}
	// The section table must be byte-identical to the plan.
	fresh := make([]byte, abi.HeaderAreaSize)
	p.putTable(fresh)
	n := abi.SectionTableOff + len(p.secs)*abi.SectionEntrySize
	if string(fresh[abi.SectionTableOff:n]) != string(mem[abi.SectionTableOff:n]) {
		return nil, fmt.Errorf("section table differs from this producer's layout: %w", ErrCorrupt)
	}
	if p.ctlSize > 0 {
		cfd, err := openOwn(path+".ctl", p.ctlSize)
		if err != nil {
			return nil, fmt.Errorf("control file: %w", err)
		}
		cf := os.NewFile(uintptr(cfd), path+".ctl")
		if r.ctl, err = sys.Mmap(cfd, 0, int(p.ctlSize), sys.ProtRead|sys.ProtWrite); err != nil {
			cf.Close()
			return nil, err
		}
		if r.pctl, err = keepControl(cf, p.ctlSize, opts); err != nil {
			cf.Close()
			return nil, err
		}
		r.ctlRW = true
	}
	if err := r.load(); err != nil {
		return nil, err
	}
	register(r)
	atomic.StoreUint32(r.u32(abi.HeaderPIDOff), uint32(os.Getpid()))
	atomic.StoreUint64(r.u64(abi.HeaderPIDNSOff), sys.PidNamespace())
	atomic.AddUint64(r.u64(abi.HeaderGenerationOff), 1)
	atomic.StoreUint64(r.u64(abi.HeaderHeartbeatOff), sys.MonotonicNs())
	atomic.StoreUint32(r.u32(abi.HeaderStateOff), abi.StateRunning)
	ok = true
	return r, nil
}

// openOwn opens path read-write for adoption: a regular file of exactly
// size bytes owned by this process's user, else an error naming what it is.
func openOwn(path string, size uint64) (int, error) {
	fd, st, err := openChecked(path, sys.ORdwr)
	if err != nil {
		return -1, err
	}
	switch {
	case st.Mode&sys.TypeMask != sys.TypeReg:
		err = fmt.Errorf("%s is a %s: %w", path, typeName(st.Mode), ErrExists)
	case st.UID != uint32(sys.Geteuid()):
		err = fmt.Errorf("%s is owned by %s, not this user: refusing to adopt it (%w)", path, ownerName(st.UID), ErrUntrusted)
	case uint64(st.Size) != size:
		err = fmt.Errorf("%s has %d bytes, layout needs %d: %w", path, st.Size, size, ErrCorrupt)
	}
	if err != nil {
		sys.Close(fd)
		return -1, err
	}
	return fd, nil
}

// Remove deletes the region file and its companion (for producers shutting
// down for good; readers that still map them keep their mappings).
func Remove(path string) error {
	err := os.Remove(path)
	if err2 := os.Remove(path + ".ctl"); err2 != nil && !errors.Is(err2, fs.ErrNotExist) && err == nil {
		err = err2
	}
	return err
}
