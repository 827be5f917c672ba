package pmu

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// System is what the probe learns about a machine from /proc and /sys
// (under Root) without opening any event.
type System struct {
	Root string `json:"root"`
	// Vendor selects the event table.
	Vendor Vendor `json:"-"`
	// VendorName is Vendor as a string (for JSON).
	VendorName string `json:"vendor"`
	// VendorID is /proc/cpuinfo's vendor_id (x86) or CPU implementer.
	VendorID  string `json:"vendor_id"`
	Family    int    `json:"cpu_family"`
	Model     int    `json:"model"`
	ModelName string `json:"model_name"`
	// Paranoid is /proc/sys/kernel/perf_event_paranoid; ParanoidKnown is
	// false when the file is missing (no perf support at all).
	Paranoid      int  `json:"perf_event_paranoid"`
	ParanoidKnown bool `json:"-"`
	// Privileged is true when /proc/self/status CapEff has CAP_PERFMON or
	// CAP_SYS_ADMIN: the paranoid setting does not apply.
	Privileged bool `json:"privileged"`
	// PMUs maps /sys/bus/event_source/devices/<name> to its type number.
	PMUs map[string]uint32 `json:"pmus"`
	// CorePMU is the name of the hardware core PMU ("cpu", "cpu_core",
	// "armv8_pmuv3_0", ...), empty when the kernel has none (most VMs).
	CorePMU string `json:"core_pmu"`
}

const (
	capSysAdmin = 21
	capPerfmon  = 38
)

// path joins root and an absolute path.
func rooted(root, p string) string {
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, p)
}

// LoadSystem reads what the probe needs from the tree under root ("" or "/"
// for the running machine). Missing files leave fields at their zero
// values; only an unreadable sysfs event_source directory is an error
// the caller might care about, and even then System is usable.
func LoadSystem(root string) *System {
	if root == "" {
		root = "/"
	}
	s := &System{Root: root, PMUs: map[string]uint32{}}
	s.readCPUInfo()
	if b, err := os.ReadFile(rooted(root, "/proc/sys/kernel/perf_event_paranoid")); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			s.Paranoid, s.ParanoidKnown = n, true
		}
	}
	s.readCaps()
	s.readPMUs()
	s.VendorName = s.Vendor.String()
	return s
}

func (s *System) readCPUInfo() {
	f, err := os.Open(rooted(s.Root, "/proc/cpuinfo"))
	if err != nil {
		return
	}
	defer f.Close()
	c := ParseCPUInfo(f)
	s.VendorID, s.Family, s.Model, s.ModelName = c.VendorID, c.Family, c.Model, c.ModelName
	s.Vendor = VendorFromID(s.VendorID)
}

// CPUInfo is what kushm takes from /proc/cpuinfo: the first processor's
// identification.
type CPUInfo struct {
	VendorID  string
	Family    int
	Model     int
	ModelName string
}

// ParseCPUInfo reads the first processor block of /proc/cpuinfo. Unknown
// or malformed lines are ignored.
func ParseCPUInfo(r io.Reader) CPUInfo {
	var c CPUInfo
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			if c.VendorID != "" && strings.TrimSpace(line) == "" {
				break // the first processor block is enough
			}
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "vendor_id", "CPU implementer":
			if c.VendorID == "" {
				c.VendorID = v
			}
		case "cpu family":
			c.Family, _ = strconv.Atoi(v)
		case "model":
			c.Model, _ = strconv.Atoi(v)
		case "model name":
			c.ModelName = v
		}
	}
	return c
}

// VendorFromID maps a cpuinfo vendor_id to a Vendor. Hygon (a Zen
// derivative) uses the AMD table.
func VendorFromID(id string) Vendor {
	switch id {
	case "GenuineIntel":
		return VendorIntel
	case "AuthenticAMD", "HygonGenuine":
		return VendorAMD
	}
	return VendorGeneric
}

func (s *System) readCaps() {
	// Credentials are per thread; perf_event_open checks the caller's.
	b, err := os.ReadFile(rooted(s.Root, "/proc/thread-self/status"))
	if err != nil {
		if b, err = os.ReadFile(rooted(s.Root, "/proc/self/status")); err != nil {
			return
		}
	}
	for _, line := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(line, "CapEff:")
		if !ok {
			continue
		}
		caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return
		}
		s.Privileged = caps&(1<<capPerfmon) != 0 || caps&(1<<capSysAdmin) != 0
	}
}

func (s *System) readPMUs() {
	dir := rooted(s.Root, "/sys/bus/event_source/devices")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	var names []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "type"))
		if err != nil {
			continue
		}
		t, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
		if err != nil {
			continue
		}
		s.PMUs[e.Name()] = uint32(t)
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		if isCorePMU(n) {
			s.CorePMU = n
			break
		}
	}
}

// isCorePMU reports whether a sysfs PMU name is a CPU core PMU, the one
// that generic hardware and raw events go to.
func isCorePMU(n string) bool {
	switch n {
	case "cpu", "cpu_core", "cpu_atom":
		return true
	}
	for _, p := range []string{"armv8_", "armv7_", "arm_cortex", "riscv-pmu", "power", "cpum_cf"} {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}

// OnlineCPUs returns the CPUs listed in /sys/devices/system/cpu/online
// under root.
func OnlineCPUs(root string) ([]int, error) {
	b, err := os.ReadFile(rooted(root, "/sys/devices/system/cpu/online"))
	if err != nil {
		return nil, err
	}
	return ParseCPUList(strings.TrimSpace(string(b)))
}

// ParseCPUList parses a kernel CPU list such as "0-3,8,10-11".
func ParseCPUList(s string) ([]int, error) {
	var out []int
	if s == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, &ParseError{What: "cpu list", Input: s}
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a || b-a > 1<<16 {
				return nil, &ParseError{What: "cpu list", Input: s}
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out, nil
}

// FormatCPUList writes cpus (ascending) as a kernel CPU list such as
// "0-3,8,10-11", what ParseCPUList reads.
func FormatCPUList(cpus []int) string {
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(cpus[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(cpus[j]))
		}
		i = j + 1
	}
	return b.String()
}

// ParseError is returned for malformed sysfs content.
type ParseError struct {
	What  string
	Input string
}

func (e *ParseError) Error() string { return "parse " + e.What + ": invalid " + strconv.Quote(e.Input) }

// Mapping returns how preset p is counted on this CPU (vendor table
// refined by family, see MappingForCPU).
func (s *System) Mapping(p PresetID) Mapping {
	m, _ := MappingForCPU(s.Vendor, s.Family, p)
	return m
}
