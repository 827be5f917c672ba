//go:build linux

package pmu

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/kushm/kushm/internal/sys/perfsys"
)

// targetKind is what an event is opened on; it changes what is allowed.
type targetKind int

const (
	targetTask   targetKind = iota // pid >= 0, cpu == -1
	targetCPU                      // pid == -1, cpu >= 0
	targetCgroup                   // cgroup fd, cpu >= 0
)

func (k targetKind) String() string {
	return [...]string{"per process", "per CPU", "per cgroup"}[k]
}

// resolve turns a mapping into perf attrs on sys, or says statically (from
// sysfs and /proc alone) why it cannot work.
func resolve(sys *System, m Mapping, tk targetKind, excludeKernel bool) (perfsys.Attr, *UnavailableError) {
	p := m.Preset
	a := perfsys.Attr{Type: m.Event.Type, Config: m.Event.Config, ExcludeKernel: excludeKernel}
	if !m.Available() {
		return a, unavailable(p, ErrNotSupported, nil, "%s CPUs have no event for it: %s", m.Vendor, m.Counts)
	}
	switch {
	case m.Event.PMU == "cpu":
		if sys.CorePMU == "" {
			return a, unavailable(p, ErrNoPMU, nil, "the kernel has no hardware PMU for this CPU (no core PMU under /sys/bus/event_source/devices; a VM without a virtual PMU)")
		}
	case m.Flags&FlagUncore != 0:
		t, ok := sys.PMUs[m.Event.PMU]
		if !ok {
			return a, unavailable(p, ErrNoPMU, nil, "there is no %s uncore PMU (/sys/bus/event_source/devices/%s is absent: driver not loaded or not exposed to this VM)", m.Event.PMU, m.Event.PMU)
		}
		if tk != targetCPU {
			return a, unavailable(p, ErrNotSupported, nil, "%s is an uncore PMU: it counts for a whole L3 complex or socket and cannot be attributed %s", m.Event.PMU, tk)
		}
		a.Type = t
		a.ExcludeKernel = false // uncore PMUs reject privilege filters
	default:
		if _, ok := sys.PMUs[m.Event.PMU]; !ok && len(sys.PMUs) > 0 {
			return a, unavailable(p, ErrNoPMU, nil, "there is no %s PMU under /sys/bus/event_source/devices", m.Event.PMU)
		}
	}
	if !sys.ParanoidKnown && len(sys.PMUs) == 0 {
		return a, unavailable(p, ErrNoPMU, nil, "the kernel has no perf events support (no /proc/sys/kernel/perf_event_paranoid, no /sys/bus/event_source)")
	}
	if !sys.Privileged && sys.ParanoidKnown {
		switch {
		case sys.Paranoid > 2:
			return a, unavailable(p, ErrPermission, nil, "perf_event_paranoid is %d (perf disabled for unprivileged users) and the process lacks CAP_PERFMON", sys.Paranoid)
		case tk != targetTask && sys.Paranoid > 0:
			return a, unavailable(p, ErrPermission, nil, "counting %s needs perf_event_paranoid <= 0 or CAP_PERFMON, and perf_event_paranoid is %d", tk, sys.Paranoid)
		case !a.ExcludeKernel && sys.Paranoid > 1:
			return a, unavailable(p, ErrPermission, nil, "perf_event_paranoid is %d: without CAP_PERFMON only user-space counting is allowed (set ExcludeKernel)", sys.Paranoid)
		}
	}
	return a, nil
}

// classify explains a perf_event_open failure.
func classify(sys *System, m Mapping, tk targetKind, err error) error {
	p := m.Preset
	var oe *perfsys.OpenError
	if !errors.As(err, &oe) {
		return unavailable(p, ErrNotAvailable, err, "perf_event_open failed: %v", err)
	}
	name := perfsys.ErrnoName(oe.Errno)
	core := m.Event.PMU == "cpu"
	switch oe.Errno {
	case perfsys.EACCES, perfsys.EPERM:
		if sys.Privileged {
			return unavailable(p, ErrPermission, err, "the kernel refused access (%s) although the process has CAP_PERFMON: a security module, lockdown or seccomp denies perf_event_open", name)
		}
		return unavailable(p, ErrPermission, err, "perf_event_paranoid is %d and the process lacks CAP_PERFMON (%s)", sys.Paranoid, name)
	case perfsys.ENOENT, perfsys.EOPNOTSUPP:
		if core && sys.CorePMU == "" {
			return unavailable(p, ErrNoPMU, err, "the kernel has no hardware PMU for this CPU (%s)", name)
		}
		if oe.Errno == perfsys.ENOENT && tk == targetCgroup && m.Event.PMU == "software" {
			// Every kernel knows the software events: the cgroup has no
			// perf_event controller (perf_cgroup_connect).
			return unavailable(p, ErrNotSupported, err, "the cgroup has no perf_event controller (%s): on cgroup v2 it is implicit, "+
				"but new cgroups get it only once some controller has been enabled in the root's cgroup.subtree_control", name)
		}
		if oe.Errno == perfsys.EOPNOTSUPP {
			return unavailable(p, ErrNotSupported, err, "the %s PMU cannot count this event %s (%s)", m.Event.PMU, tk, name)
		}
		return unavailable(p, ErrNotSupported, err, "the %s PMU does not know this event on this CPU model (%s)", m.Event.PMU, name)
	case perfsys.ENODEV:
		return unavailable(p, ErrNoPMU, err, "the CPU or the %s PMU does not exist (%s)", m.Event.PMU, name)
	case perfsys.EINVAL:
		return unavailable(p, ErrNotSupported, err, "the kernel rejected the event encoding type %d config %#x (%s): not valid on this CPU model", oe.Attr.Type, oe.Attr.Config, name)
	case perfsys.EBUSY:
		return unavailable(p, ErrNotAvailable, err, "the counter is busy (%s): another user holds it exclusively", name)
	case perfsys.EMFILE:
		return unavailable(p, ErrNotAvailable, err, "too many open files (%s)", name)
	}
	return unavailable(p, ErrNotAvailable, err, "perf_event_open failed (%s)", name)
}

// ProbeOptions configure Probe.
type ProbeOptions struct {
	// Root of the /proc and /sys trees; "" means "/".
	Root string
	// Static decides from /proc and /sys alone, without perf_event_open.
	// Use it for fixture trees and for another machine's sysfs dump.
	Static bool
	// ExcludeKernel probes user-space-only counting (what unprivileged
	// processes get with perf_event_paranoid 2).
	ExcludeKernel bool
}

// Availability is one preset's probe result.
type Availability struct {
	Preset    Preset  `json:"preset"`
	Mapping   Mapping `json:"mapping"`
	Available bool    `json:"available"`
	// Err is nil when Available, otherwise an *UnavailableError.
	Err error `json:"-"`
	// Reason is Err's text without the preset name ("" when available).
	Reason string `json:"reason,omitempty"`
	// Kind is "permission", "no-pmu", "not-supported" or "not-available".
	Kind string `json:"kind,omitempty"`
}

// Report is what Probe found.
type Report struct {
	System  *System        `json:"system"`
	Presets []Availability `json:"presets"`
}

// Probe reports, for every preset, whether it can be counted on this
// machine and, if not, why. Core and software presets are opened on the
// calling thread (pid 0, any CPU), uncore ones per CPU on the first CPU of
// the PMU's cpumask, and closed again at once, like papi_avail.
func Probe(o *ProbeOptions) *Report {
	if o == nil {
		o = &ProbeOptions{}
	}
	sys := LoadSystem(o.Root)
	r := &Report{System: sys}
	for _, p := range presets {
		m := sys.Mapping(p.ID)
		tk := targetTask
		if m.Flags&FlagUncore != 0 {
			tk = targetCPU
		}
		var err error
		attr, uerr := resolve(sys, m, tk, o.ExcludeKernel)
		switch {
		case uerr != nil && (o.Static || uerr.Kind == ErrNotSupported || m.Flags&FlagUncore != 0 && uerr.Kind == ErrNoPMU):
			// Static verdict, or nothing sensible to open.
			err = uerr
		case !o.Static:
			err = tryOpen(sys, m, tk, attr)
		}
		r.Presets = append(r.Presets, availability(p, m, err))
	}
	return r
}

func tryOpen(sys *System, m Mapping, tk targetKind, attr perfsys.Attr) error {
	t := perfsys.Target{PID: 0, CPU: -1, CgroupFD: -1}
	if tk == targetCPU {
		t = perfsys.Target{PID: -1, CPU: firstCPU(sys, m.Event.PMU), CgroupFD: -1}
	}
	fd, err := perfsys.Open(attr, t, -1, false)
	if err != nil {
		return classify(sys, m, tk, err)
	}
	perfsys.Close(fd)
	return nil
}

func availability(p Preset, m Mapping, err error) Availability {
	a := Availability{Preset: p, Mapping: m, Available: err == nil, Err: err}
	var ue *UnavailableError
	if errors.As(err, &ue) {
		a.Reason = ue.Cause
		a.Kind = kindName(ue.Kind)
	} else if err != nil {
		a.Reason = err.Error()
		a.Kind = kindName(ErrNotAvailable)
	}
	return a
}

func kindName(k error) string {
	switch k {
	case ErrPermission:
		return "permission"
	case ErrNoPMU:
		return "no-pmu"
	case ErrNotSupported:
		return "not-supported"
	}
	return "not-available"
}

// String formats a one-line summary, e.g. "PAPI_TOT_CYC: available".
func (a Availability) String() string {
	if a.Available {
		return fmt.Sprintf("%s: available", a.Preset.Name)
	}
	return a.Err.Error()
}

// firstCPU is the CPU to open a per-CPU probe on: the first of the PMU's
// cpumask, else the first online CPU, else 0.
func firstCPU(sys *System, pmu string) int {
	for _, f := range []string{"/sys/bus/event_source/devices/" + pmu + "/cpumask", "/sys/devices/system/cpu/online"} {
		b, err := os.ReadFile(rooted(sys.Root, f))
		if err != nil {
			continue
		}
		if cpus, err := ParseCPUList(strings.TrimSpace(string(b))); err == nil && len(cpus) > 0 {
			return cpus[0]
		}
	}
	return 0
}

// EventFor returns the perf event that counts preset p on this system,
// with an uncore PMU's boot-time type number filled in, or the static
// reason (from /proc and /sys alone) why it cannot be counted per CPU.
func (s *System) EventFor(p PresetID) (Event, error) {
	if p >= NumPresets {
		return Event{}, fmt.Errorf("preset %d: %w", uint32(p), ErrNotSupported)
	}
	m := s.Mapping(p)
	a, uerr := resolve(s, m, targetCPU, false)
	if uerr != nil {
		return Event{}, uerr
	}
	return Event{Type: a.Type, Config: a.Config, PMU: m.Event.PMU}, nil
}

// AllPresets returns the IDs 0..NumPresets-1.
func AllPresets() []PresetID {
	out := make([]PresetID, NumPresets)
	for i := range out {
		out[i] = PresetID(i)
	}
	return out
}
