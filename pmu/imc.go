//go:build linux

package pmu

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/errs"
	"github.com/kushm/kushm/internal/sys/perfsys"
	"github.com/kushm/kushm/internal/sysfsev"
)

// BytesPerCAS is the DRAM burst a CAS command moves: one 64-byte line.
const BytesPerCAS = 64

// IMCUnit is one memory-controller channel PMU
// (/sys/bus/event_source/devices/uncore_imc_N on Intel servers).
type IMCUnit struct {
	Name string `json:"name"`
	Type uint32 `json:"type"`
	// CPUs holds one CPU per socket: open the events there.
	CPUs []int `json:"cpus"`
	// Read and Write are the cas_count_read/cas_count_write events.
	Read  sysfsev.Event `json:"-"`
	Write sysfsev.Event `json:"-"`
	// BytesPerCount converts counts to bytes (64, or the kernel's
	// .scale × 2^20 when its unit is MiB).
	BytesPerCount float64 `json:"bytes_per_count"`
}

// DiscoverIMC finds the memory-controller PMUs under root. It fails with
// an error matching ErrNoPMU where the machine has none: the uncore IMC
// PMUs exist on Intel servers only (not on clients, AMD or VMs).
func DiscoverIMC(root string) ([]IMCUnit, error) {
	dirs, _ := filepath.Glob(rooted(root, "/sys/bus/event_source/devices/uncore_imc_*"))
	sort.Strings(dirs)
	var units []IMCUnit
	var errs []error
	for _, d := range dirs {
		p, err := sysfsev.LoadPMU(d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		u := IMCUnit{Name: p.Name, Type: p.Type, BytesPerCount: BytesPerCAS}
		if u.CPUs, err = ParseCPUList(p.CPUs); err != nil || len(u.CPUs) == 0 {
			u.CPUs = []int{0}
		}
		if u.Read, err = p.Event("cas_count_read"); err != nil {
			errs = append(errs, err)
			continue
		}
		if u.Write, err = p.Event("cas_count_write"); err != nil {
			errs = append(errs, err)
			continue
		}
		if u.Read.Unit == "MiB" && u.Read.Scale != 1 {
			u.BytesPerCount = u.Read.Scale * (1 << 20)
		}
		units = append(units, u)
	}
	if len(units) == 0 {
		why := "there are no uncore_imc_* PMUs under /sys/bus/event_source/devices (memory-controller counters are exposed by the perf uncore driver on Intel servers only; not on client CPUs, AMD or in VMs)"
		if len(dirs) > 0 {
			why = fmt.Sprintf("the uncore_imc PMUs have no usable cas_count_read/cas_count_write events: %v", errors.Join(errs...))
		}
		return nil, imcUnavailable(ErrNoPMU, nil, "%s", why)
	}
	return units, nil
}

// IMCError says why memory-controller traffic is not available (What is
// "memory-controller traffic", Source "perf"): kushm's one Unavailable
// type.
type IMCError = errs.Unavailable

func imcUnavailable(kind, err error, format string, args ...any) *IMCError {
	return errs.NewUnavailable("memory-controller traffic", abi.InfoSourcePerf, kind, err, format, args...)
}

// MemTraffic is DRAM traffic counted since the IMCReader was opened.
type MemTraffic struct {
	// Sockets maps the CPU that counted (one per socket) to its bytes.
	Sockets    map[int]SocketTraffic `json:"sockets"`
	ReadBytes  uint64                `json:"read_bytes"`
	WriteBytes uint64                `json:"write_bytes"`
}

// SocketTraffic is one socket's DRAM traffic.
type SocketTraffic struct {
	ReadBytes  uint64 `json:"read_bytes"`
	WriteBytes uint64 `json:"write_bytes"`
}

// IMCReader counts CAS reads and writes on every channel of every socket.
type IMCReader struct {
	fds   []imcFD
	buf   []byte
	count perfsys.Count
}

type imcFD struct {
	fd    int
	cpu   int
	write bool
	bpc   float64
}

// OpenIMC opens cas_count_read/write on every IMC unit, on one CPU per
// socket. It needs CAP_PERFMON (or perf_event_paranoid <= 0).
func OpenIMC(root string) (*IMCReader, error) {
	units, err := DiscoverIMC(root)
	if err != nil {
		return nil, err
	}
	r := &IMCReader{buf: make([]byte, 24)}
	for _, u := range units {
		for _, cpu := range u.CPUs {
			for _, ev := range []struct {
				e     sysfsev.Event
				write bool
			}{{u.Read, false}, {u.Write, true}} {
				attr := perfsys.Attr{Type: u.Type, Config: ev.e.Config[0], Config1: ev.e.Config[1], Config2: ev.e.Config[2]}
				fd, err := perfsys.Open(attr, perfsys.Target{PID: -1, CPU: cpu, CgroupFD: -1}, -1, false)
				if err == nil {
					err = perfsys.Enable(fd, false)
				}
				if err != nil {
					r.Close()
					kind := ErrNotSupported
					if errors.Is(err, perfsys.EACCES) || errors.Is(err, perfsys.EPERM) {
						kind = ErrPermission
					} else if errors.Is(err, perfsys.ENOENT) || errors.Is(err, perfsys.ENODEV) {
						kind = ErrNoPMU
					}
					return nil, imcUnavailable(kind, err, "%s/%s on cpu %d cannot be opened (%v)", u.Name, ev.e.Name, cpu, err)
				}
				r.fds = append(r.fds, imcFD{fd: fd, cpu: cpu, write: ev.write, bpc: u.BytesPerCount})
			}
		}
	}
	return r, nil
}

// Read returns the traffic since OpenIMC.
func (r *IMCReader) Read() (MemTraffic, error) {
	t := MemTraffic{Sockets: map[int]SocketTraffic{}}
	for _, f := range r.fds {
		if err := perfsys.ReadOne(f.fd, r.buf, &r.count); err != nil {
			return t, fmt.Errorf("read memory-controller counters: %w", err)
		}
		scaled, _ := Scale(r.count.Value, r.count.Enabled, r.count.Running)
		s := t.Sockets[f.cpu]
		b := uint64(float64(scaled) * f.bpc)
		if f.write {
			s.WriteBytes += b
			t.WriteBytes += b
		} else {
			s.ReadBytes += b
			t.ReadBytes += b
		}
		t.Sockets[f.cpu] = s
	}
	return t, nil
}

// Close releases the counters.
func (r *IMCReader) Close() error {
	var errs []error
	for _, f := range r.fds {
		errs = append(errs, perfsys.Close(f.fd))
	}
	r.fds = nil
	return errors.Join(errs...)
}
