//go:build linux

package msr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	perf "github.com/hodgesds/perf-utils"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/sys/perfsys"
	"github.com/kushm/kushm/internal/sysfsev"
)

// Raw is one undecoded value from a source.
type Raw struct {
	Value uint64
	// Absolute is true when Value is the register itself (/dev/cpu);
	// false when it counts from the moment the source first read this
	// entry on this CPU (perf msr PMU).
	Absolute bool
	// Range is the wrap modulus when it is not 2^Width (powercap energy).
	Range uint64
	// Scale, when not 0, converts Value to the entry's unit directly
	// (powercap: µJ to J); when 0, energy is in RAPL units.
	Scale float64
}

// Source reads catalogue registers one way. Every source checks its
// allowlist before reading. Sources are not safe for concurrent use.
type Source interface {
	// Name is "dev", "perf" or "powercap".
	Name() string
	// Has reports whether the source knows the entry at all.
	Has(id ID) bool
	// Read reads entry id on cpu. Errors are *UnavailableError.
	Read(cpu int, id ID) (Raw, error)
	Close() error
}

func rooted(root, p string) string {
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, p)
}

// DevSource reads /dev/cpu/N/msr (the msr driver) with pread(2) at the
// MSR address, through perf-utils' MSR type. Files stay open.
type DevSource struct {
	root  string
	allow *Allowlist
	files map[int]msrFile
	open  func(path string) (msrFile, error)
	buf   []byte
}

// msrFile is what DevSource needs of an open /dev/cpu/N/msr: perf-utils'
// *perf.MSR (pread at the MSR address), or a fake in tests.
type msrFile interface {
	Read(off int64, buf []byte) error
	Close() error
}

func openMSRFile(path string) (msrFile, error) {
	m, err := perf.NewMSR(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// NewDevSource returns a source for <root>/dev/cpu/N/msr. It fails with
// ErrNoSource when <root>/dev/cpu/*/msr does not exist.
func NewDevSource(root string, allow *Allowlist) (*DevSource, error) {
	if allow == nil {
		allow = DefaultAllowlist()
	}
	return newDevSource(root, allow, nil)
}

func newDevSource(root string, allow *Allowlist, open func(string) (msrFile, error)) (*DevSource, error) {
	if allow == nil {
		allow = DefaultAllowlist()
	}
	if open == nil {
		m, _ := filepath.Glob(rooted(root, "/dev/cpu/[0-9]*/msr"))
		if len(m) == 0 {
			return nil, noSource("%s is absent (msr driver not loaded: modprobe msr)", rooted(root, "/dev/cpu/N/msr"))
		}
		open = openMSRFile
	}
	return &DevSource{root: root, allow: allow, files: map[int]msrFile{}, open: open, buf: make([]byte, 8)}, nil
}

func (s *DevSource) Name() string { return "dev" }
func (s *DevSource) Has(ID) bool  { return true }
func (s *DevSource) Close() error {
	var errs []error
	for cpu, f := range s.files {
		errs = append(errs, f.Close())
		delete(s.files, cpu)
	}
	return errors.Join(errs...)
}

func (s *DevSource) Read(cpu int, id ID) (Raw, error) {
	e, ok := Lookup(id)
	if !ok {
		return Raw{}, unavailable(id, cpu, abi.InfoSourceMSR, ErrNotSupported, nil, "it is not in the catalogue")
	}
	if err := s.allow.CheckRead(e.Addr); err != nil {
		return Raw{}, unavailable(id, cpu, abi.InfoSourceMSR, ErrNotAllowed, err, "MSR %#x is not on the allowlist", e.Addr)
	}
	f, ok := s.files[cpu]
	if !ok {
		path := rooted(s.root, fmt.Sprintf("/dev/cpu/%d/msr", cpu))
		var err error
		f, err = s.open(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return Raw{}, unavailable(id, cpu, abi.InfoSourceMSR, ErrNoSource, err, "%s is absent (no such CPU, or msr driver not loaded)", path)
		case errors.Is(err, fs.ErrPermission):
			return Raw{}, unavailable(id, cpu, abi.InfoSourceMSR, ErrPermission, err, "%s needs CAP_SYS_RAWIO (%v)", path, err)
		case err != nil:
			return Raw{}, unavailable(id, cpu, abi.InfoSourceMSR, ErrNoSource, err, "open %s: %v", path, err)
		}
		s.files[cpu] = f
	}
	if err := f.Read(int64(e.Addr), s.buf); err != nil {
		if errors.Is(err, perfsys.EIO) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return Raw{}, unavailable(id, cpu, abi.InfoSourceMSR, ErrNotSupported, err, "the CPU does not implement MSR %#x (rdmsr faulted: EIO)", e.Addr)
		}
		if errors.Is(err, fs.ErrPermission) {
			return Raw{}, unavailable(id, cpu, abi.InfoSourceMSR, ErrPermission, err, "reading MSR %#x needs CAP_SYS_RAWIO", e.Addr)
		}
		return Raw{}, unavailable(id, cpu, abi.InfoSourceMSR, ErrNotSupported, err, "pread MSR %#x: %v", e.Addr, err)
	}
	v := binary.LittleEndian.Uint64(s.buf)
	return Raw{Value: v, Absolute: true}, nil
}

// perfEvents maps entries to the msr PMU's event names.
var perfEvents = map[ID]string{TSC: "tsc", APERF: "aperf", MPERF: "mperf", SMI_COUNT: "smi"}

// PerfSource reads the perf "msr" PMU
// (/sys/bus/event_source/devices/msr: tsc, aperf, mperf, smi...). Counts
// start when an entry is first read on a CPU (Raw.Absolute is false):
// use differences. Event fds stay open.
type PerfSource struct {
	root   string
	allow  *Allowlist
	pmu    *sysfsev.PMU
	events map[ID]sysfsev.Event
	fds    map[[2]int]int
	buf    []byte
	count  perfsys.Count
}

// NewPerfSource discovers the msr PMU under root. It fails with
// ErrNoSource when the PMU is absent.
func NewPerfSource(root string, allow *Allowlist) (*PerfSource, error) {
	if allow == nil {
		allow = DefaultAllowlist()
	}
	p, err := sysfsev.LoadPMU(rooted(root, "/sys/bus/event_source/devices/msr"))
	if err != nil {
		return nil, noSource("there is no perf msr PMU (%v)", err)
	}
	s := &PerfSource{root: root, allow: allow, pmu: p, events: map[ID]sysfsev.Event{}, fds: map[[2]int]int{}, buf: make([]byte, 24)}
	for id, name := range perfEvents {
		if ev, err := p.Event(name); err == nil {
			s.events[id] = ev
		}
	}
	return s, nil
}

func (s *PerfSource) Name() string { return "perf" }

// Has reports whether the msr PMU can have an event for id (tsc, aperf,
// mperf, smi); Read says when this machine's PMU lacks it.
func (s *PerfSource) Has(id ID) bool { _, ok := perfEvents[id]; return ok }

// Events returns the msr PMU event names this source offers.
func (s *PerfSource) Events() []string {
	var out []string
	for id := ID(0); id < NumMSRs; id++ {
		if _, ok := s.events[id]; ok {
			out = append(out, perfEvents[id])
		}
	}
	return out
}

func (s *PerfSource) Read(cpu int, id ID) (Raw, error) {
	e, _ := Lookup(id)
	ev, ok := s.events[id]
	if !ok {
		name, known := perfEvents[id]
		if !known {
			return Raw{}, unavailable(id, cpu, abi.InfoSourcePerfMSR, ErrNotSupported, nil, "the perf msr PMU has no event for it")
		}
		return Raw{}, unavailable(id, cpu, abi.InfoSourcePerfMSR, ErrNotSupported, nil, "the perf msr PMU here has no %s event (it offers: %s)", name, strings.Join(s.Events(), ", "))
	}
	if err := s.allow.CheckRead(e.Addr); err != nil {
		return Raw{}, unavailable(id, cpu, abi.InfoSourcePerfMSR, ErrNotAllowed, err, "MSR %#x is not on the allowlist", e.Addr)
	}
	key := [2]int{cpu, int(id)}
	fd, ok := s.fds[key]
	if !ok && s.root != "" && s.root != "/" {
		return Raw{}, unavailable(id, cpu, abi.InfoSourcePerfMSR, ErrNoSource, nil, "perf events are not opened for a fixture root (%s)", s.root)
	}
	if !ok {
		attr := perfsys.Attr{Type: s.pmu.Type, Config: ev.Config[0], Config1: ev.Config[1], Config2: ev.Config[2]}
		var err error
		fd, err = perfsys.Open(attr, perfsys.Target{PID: -1, CPU: cpu, CgroupFD: -1}, -1, false)
		if err != nil {
			kind := ErrNotSupported
			if errors.Is(err, perfsys.EACCES) || errors.Is(err, perfsys.EPERM) {
				kind = ErrPermission
			} else if errors.Is(err, perfsys.ENODEV) || errors.Is(err, perfsys.ENXIO) {
				kind = ErrNoSource
			}
			return Raw{}, unavailable(id, cpu, abi.InfoSourcePerfMSR, kind, err, "the perf msr PMU event %s cannot be opened on cpu %d (%v)", perfEvents[id], cpu, err)
		}
		if err := perfsys.Enable(fd, false); err != nil {
			perfsys.Close(fd)
			return Raw{}, unavailable(id, cpu, abi.InfoSourcePerfMSR, ErrNotSupported, err, "enable perf msr event %s: %v", perfEvents[id], err)
		}
		s.fds[key] = fd
	}
	if err := perfsys.ReadOne(fd, s.buf, &s.count); err != nil {
		return Raw{}, unavailable(id, cpu, abi.InfoSourcePerfMSR, ErrNotSupported, err, "read perf msr event %s: %v", perfEvents[id], err)
	}
	return Raw{Value: s.count.Value}, nil
}

// forget closes the events of cpu.
func (s *PerfSource) forget(cpu int) {
	for k, fd := range s.fds {
		if k[0] == cpu {
			perfsys.Close(fd)
			delete(s.fds, k)
		}
	}
}

func (s *PerfSource) Close() error {
	var errs []error
	for k, fd := range s.fds {
		errs = append(errs, perfsys.Close(fd))
		delete(s.fds, k)
	}
	return errors.Join(errs...)
}

// PowercapSource reads RAPL energy from the powercap framework
// (/sys/class/powercap/intel-rapl:P[:S]/energy_uj, also used for AMD).
// Values are in µJ and wrap at max_energy_range_uj.
type PowercapSource struct {
	root  string
	allow *Allowlist
	zones map[[2]int]string // (package, id) -> zone dir
}

// NewPowercapSource discovers RAPL zones under root. amd selects the AMD
// entries for the package and core zones. It fails with ErrNoSource when
// there are none.
func NewPowercapSource(root string, allow *Allowlist, amd bool) (*PowercapSource, error) {
	if allow == nil {
		allow = DefaultAllowlist()
	}
	s := &PowercapSource{root: root, allow: allow, zones: map[[2]int]string{}}
	dirs, _ := filepath.Glob(rooted(root, "/sys/class/powercap/intel-rapl:*"))
	for _, d := range dirs {
		parts := strings.Split(strings.TrimPrefix(filepath.Base(d), "intel-rapl:"), ":")
		b, err := os.ReadFile(filepath.Join(d, "name"))
		if err != nil {
			continue
		}
		name := strings.TrimSpace(string(b))
		pkg, err := strconv.Atoi(parts[0])
		if err != nil {
			continue
		}
		var id ID
		switch {
		case len(parts) == 1 && strings.HasPrefix(name, "package-"):
			if n, err := strconv.Atoi(strings.TrimPrefix(name, "package-")); err == nil {
				pkg = n
			}
			id = PKG_ENERGY_STATUS
			if amd {
				id = AMD_PKG_ENERGY
			}
		case len(parts) == 2 && name == "core" && !amd:
			id = PP0_ENERGY_STATUS
		case len(parts) == 2 && name == "uncore" && !amd:
			id = PP1_ENERGY_STATUS
		case len(parts) == 2 && name == "dram" && !amd:
			id = DRAM_ENERGY_STATUS
		default:
			continue // psys, AMD aggregate core zone, unknown
		}
		if len(parts) == 2 {
			// Subzones belong to their parent's package.
			if pb, err := os.ReadFile(filepath.Join(filepath.Dir(d), "intel-rapl:"+parts[0], "name")); err == nil {
				if n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(string(pb)), "package-")); err == nil {
					pkg = n
				}
			}
		}
		s.zones[[2]int{pkg, int(id)}] = d
	}
	if len(s.zones) == 0 {
		return nil, noSource("%s has no RAPL zones (no powercap intel_rapl driver)", rooted(root, "/sys/class/powercap"))
	}
	return s, nil
}

func (s *PowercapSource) Name() string { return "powercap" }

func (s *PowercapSource) Has(id ID) bool {
	for k := range s.zones {
		if k[1] == int(id) {
			return true
		}
	}
	return false
}

func (s *PowercapSource) Close() error { return nil }

// packageOf returns the physical package of cpu (0 when unknown).
func packageOf(root string, cpu int) int {
	b, err := os.ReadFile(rooted(root, fmt.Sprintf("/sys/devices/system/cpu/cpu%d/topology/physical_package_id", cpu)))
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func (s *PowercapSource) Read(cpu int, id ID) (Raw, error) {
	e, _ := Lookup(id)
	if err := s.allow.CheckRead(e.Addr); err != nil {
		return Raw{}, unavailable(id, cpu, abi.InfoSourcePowercap, ErrNotAllowed, err, "MSR %#x is not on the allowlist", e.Addr)
	}
	pkg := packageOf(s.root, cpu)
	d, ok := s.zones[[2]int{pkg, int(id)}]
	if !ok {
		return Raw{}, unavailable(id, cpu, abi.InfoSourcePowercap, ErrNotSupported, nil, "powercap has no zone for it on package %d", pkg)
	}
	b, err := os.ReadFile(filepath.Join(d, "energy_uj"))
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return Raw{}, unavailable(id, cpu, abi.InfoSourcePowercap, ErrPermission, err, "%s/energy_uj is readable by root only (since Linux 5.10, CVE-2020-8694)", d)
		}
		return Raw{}, unavailable(id, cpu, abi.InfoSourcePowercap, ErrNotSupported, err, "read %s/energy_uj: %v", d, err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return Raw{}, unavailable(id, cpu, abi.InfoSourcePowercap, ErrSyntax, err, "%s/energy_uj holds %q", d, strings.TrimSpace(string(b)))
	}
	r := Raw{Value: v, Absolute: true, Scale: 1e-6}
	if b, err := os.ReadFile(filepath.Join(d, "max_energy_range_uj")); err == nil {
		if m, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && m > 0 {
			r.Range = m + 1
		}
	}
	return r, nil
}

// sourceError says why a source is absent; it matches ErrNoSource.
type sourceError struct{ msg string }

func (e *sourceError) Error() string        { return e.msg }
func (e *sourceError) Is(target error) bool { return target == ErrNoSource }

func noSource(format string, args ...any) error {
	return &sourceError{fmt.Sprintf(format, args...)}
}
