package client

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/bits"
	"sort"
	"strconv"
	"time"
	"unsafe"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/cgroup2"
	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
)

// Cgroup is one row of the "cgroups" section: what the tasks of one
// cgroup v2 did, summed over CPUs. Counters are raw counts; a counter
// whose event group was multiplexed (Running < Enabled) is scaled by
// Count and marked by its fraction.
type Cgroup struct {
	ID   uint64 `json:"cgroup_id"`
	Path string `json:"cgroup"` // "/system.slice/foo.service"; "(idle)", "(other)"; "?" + id when not found
	// Valid: bit i: counter i is measured. Groups: 4 bits per counter,
	// 0 exact, g+1 counted in event group g.
	Valid    uint64                     `json:"-"`
	Groups   uint64                     `json:"-"`
	Counters [abi.CgroupCounters]uint64 `json:"-"`
	Enabled  [abi.CgroupGroups]uint64   `json:"-"`
	Running  [abi.CgroupGroups]uint64   `json:"-"`
}

// Names of the two rows that are not cgroups.
const (
	CgroupIdleName     = "(idle)"
	CgroupOverflowName = "(other)"
)

// Has reports whether counter i is measured.
func (g *Cgroup) Has(i int) bool {
	return i >= 0 && i < abi.CgroupCounters && g.Valid&(1<<uint(i)) != 0
}

// Group returns the event group of counter i (-1: counted exactly) and
// whether the region's group field for it is sane.
func (g *Cgroup) Group(i int) (int, bool) {
	if i < 0 || i >= abi.CgroupCounters {
		return 0, false
	}
	n := int(g.Groups>>(4*uint(i))) & 15
	if n > abi.CgroupGroups {
		return 0, false
	}
	return n - 1, true
}

// Count returns counter i: the count estimated for the whole time (raw ×
// enabled / running when its group was multiplexed), the fraction of the
// time it was really counted (1: exact or never multiplexed), and ok.
// ok is false when the counter is not measured, its group field is
// corrupt, or the group never ran while it was enabled.
func (g *Cgroup) Count(i int) (v uint64, fraction float64, ok bool) {
	if !g.Has(i) {
		return 0, 0, false
	}
	grp, sane := g.Group(i)
	if !sane {
		return 0, 0, false
	}
	if grp < 0 {
		return g.Counters[i], 1, true
	}
	en, run := g.Enabled[grp], g.Running[grp]
	if en == 0 && run == 0 {
		return g.Counters[i], 1, true // nothing ran: nothing to scale
	}
	if run == 0 || en == 0 {
		return 0, 0, false // never on a counter, or times a writer never wrote
	}
	scaled, fr := pmu.Scale(g.Counters[i], en, run)
	return scaled, fr, true
}

// Ratio returns counter num / counter den, only when both were counted
// in one event group (so both saw the same instants) or both exactly;
// otherwise it says why there is no ratio.
func (g *Cgroup) Ratio(num, den int) (float64, error) {
	a, _, ok1 := g.Count(num)
	b, _, ok2 := g.Count(den)
	if !ok1 || !ok2 {
		return 0, fmt.Errorf("no ratio: a counter is not measured")
	}
	ga, _ := g.Group(num)
	gb, _ := g.Group(den)
	if ga != gb {
		return 0, fmt.Errorf("no ratio: %s and %s were not counted as one group", pmu.PresetID(num), pmu.PresetID(den))
	}
	if b == 0 {
		return 0, fmt.Errorf("no ratio: %s is 0", pmu.PresetID(den))
	}
	return float64(a) / float64(b), nil
}

// Sub returns the change from prev (an earlier read of the same
// cgroup) to g; a counter that went backwards (the producer restarted)
// loses its valid bit.
func (g Cgroup) Sub(prev Cgroup) Cgroup {
	d := g
	for i := range d.Counters {
		if g.Counters[i] < prev.Counters[i] {
			d.Valid &^= 1 << uint(i)
			d.Counters[i] = 0
			continue
		}
		d.Counters[i] -= prev.Counters[i]
	}
	for k := range d.Enabled {
		d.Enabled[k] = sat(g.Enabled[k], prev.Enabled[k])
		d.Running[k] = sat(g.Running[k], prev.Running[k])
	}
	return d
}

func sat(a, b uint64) uint64 {
	v, borrow := bits.Sub64(a, b, 0)
	if borrow != 0 {
		return 0
	}
	return v
}

// CgroupNamer names cgroup ids (a Resolver of internal/cgroup2).
type CgroupNamer interface {
	Path(id uint64) (string, bool)
}

// NewCgroupNamer finds this machine's cgroup2 hierarchy under root
// (from its mountinfo; the hybrid layout at /sys/fs/cgroup/unified
// included) and names ids by walking it.
func NewCgroupNamer(root string) (CgroupNamer, error) {
	r, err := cgroup2.NewResolver(root)
	if err != nil {
		return nil, fmt.Errorf("name cgroups: %w", err)
	}
	return r, nil
}

// CgroupName is the name of cgroup id: its path, or one of the special
// rows' names, or "?<id>" (a cgroup removed since, or in a hierarchy
// this process cannot see).
func CgroupName(id uint64, n CgroupNamer) string {
	switch id {
	case abi.CgroupKeyIdle:
		return CgroupIdleName
	case abi.CgroupKeyOverflow:
		return CgroupOverflowName
	}
	if n != nil {
		if p, ok := n.Path(id); ok {
			return p
		}
	}
	return "?" + strconv.FormatUint(id, 10)
}

var (
	cgOffEnabled = int(unsafe.Offsetof(abi.CgroupStat{}.Enabled))
	cgOffRunning = int(unsafe.Offsetof(abi.CgroupStat{}.Running))
	cgOffGroups  = int(unsafe.Offsetof(abi.CgroupData{}.Groups))
	cgDataSize   = int(unsafe.Sizeof(abi.CgroupData{}))
	cgValueSize  = int(unsafe.Sizeof(abi.CgroupStat{}))
)

func decodeCgroup(key uint64, data, val []byte, nslots, vsize int) Cgroup {
	le := binary.LittleEndian
	g := Cgroup{ID: key}
	if len(data) >= cgDataSize {
		g.Valid = le.Uint64(data)
		g.Groups = le.Uint64(data[cgOffGroups:])
	}
	if vsize < cgValueSize {
		g.Valid = 0 // a value too short for the ABI: nothing is trusted
		return g
	}
	for j := 0; j < nslots && (j+1)*vsize <= len(val); j++ {
		s := val[j*vsize:]
		for i := 0; i < abi.CgroupCounters; i++ {
			g.Counters[i] += le.Uint64(s[8*i:])
		}
		for k := 0; k < abi.CgroupGroups; k++ {
			g.Enabled[k] += le.Uint64(s[cgOffEnabled+8*k:])
			g.Running[k] += le.Uint64(s[cgOffRunning+8*k:])
		}
	}
	return g
}

// Cgroups reads every row of the cgroups section, named with n (nil:
// "?<id>"), sorted by path. The error wraps shm.ErrNoSection when the
// producer has no such section (an older producer).
func (c *Client) Cgroups(n CgroupNamer) ([]Cgroup, error) {
	return guarded(func() ([]Cgroup, error) { return c.cgroups(n) })
}

func (c *Client) cgroups(n CgroupNamer) ([]Cgroup, error) {
	t, err := rcuhash.Open(c.r, abi.SecNameCgroups)
	if err != nil {
		return nil, fmt.Errorf("read cgroups: %w", err)
	}
	if t.DataSize() < cgDataSize || t.ValueSize() < cgValueSize {
		return nil, fmt.Errorf("read cgroups: data %d / value %d bytes, want %d / %d: %w", t.DataSize(), t.ValueSize(), cgDataSize, cgValueSize, shm.ErrCorrupt)
	}
	var out []Cgroup
	ns, vs := t.NSlots(), t.ValueSize()
	t.Range(func(e *rcuhash.Entry) bool {
		g := decodeCgroup(e.Key, e.Data, e.Slots, ns, vs)
		g.Path = CgroupName(g.ID, n)
		out = append(out, g)
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// CgroupTableStats are the cgroups table's header counters.
func (c *Client) CgroupTableStats() (rcuhash.Stats, error) { return guarded(c.cgroupTableStats) }

func (c *Client) cgroupTableStats() (rcuhash.Stats, error) {
	t, err := rcuhash.Open(c.r, abi.SecNameCgroups)
	if err != nil {
		return rcuhash.Stats{}, fmt.Errorf("read cgroups: %w", err)
	}
	return t.Stats(), nil
}

// CgroupCounter is one counter of one cgroup over an interval.
type CgroupCounter struct {
	Total uint64  `json:"total"` // scaled to the whole time when multiplexed
	Rate  float64 `json:"rate_per_s"`
	// Fraction of the time the counter was really counted (1: exact or
	// never multiplexed). Scaled: Total is an extrapolation (Fraction < 1).
	Fraction float64 `json:"counted_fraction"`
	Scaled   bool    `json:"scaled"`
}

// CgroupRatio is a derived ratio (IPC, MPKI). Value is null, with Note
// saying why, when its events were not counted as one group.
type CgroupRatio struct {
	Value  *float64 `json:"value"`
	Scaled bool     `json:"scaled,omitempty"`
	Note   string   `json:"note,omitempty"`
}

// CgroupStat is one cgroup over an interval.
type CgroupStat struct {
	Cgroup   string                   `json:"cgroup"`
	CgroupID uint64                   `json:"cgroup_id"`
	Counters map[string]CgroupCounter `json:"counters"` // by metric name; not measured: absent
	// CPUPercent is the on-CPU time over the interval in % of one CPU.
	CPUPercent *float64               `json:"cpu_percent"`
	Ratios     map[string]CgroupRatio `json:"ratios,omitempty"` // "ipc", "mpki"
}

// Counter returns metric id's counter, if measured.
func (s *CgroupStat) Counter(id pmu.PresetID) (CgroupCounter, bool) {
	c, ok := s.Counters[MetricName(id)]
	return c, ok
}

// CgroupDelta computes each cgroup's counters between two reads of
// Cgroups, interval apart. A cgroup only in cur is taken from zero (it
// appeared during the interval).
func CgroupDelta(prev, cur []Cgroup, interval time.Duration) []CgroupStat {
	old := make(map[uint64]*Cgroup, len(prev))
	for i := range prev {
		old[prev[i].ID] = &prev[i]
	}
	secs := interval.Seconds()
	out := make([]CgroupStat, 0, len(cur))
	for i := range cur {
		g := cur[i]
		if p := old[g.ID]; p != nil {
			g = g.Sub(*p)
		}
		s := CgroupStat{Cgroup: g.Path, CgroupID: g.ID, Counters: map[string]CgroupCounter{}}
		for id := pmu.PresetID(0); id < pmu.NumPresets; id++ {
			v, f, ok := g.Count(int(id))
			if !ok {
				continue
			}
			c := CgroupCounter{Total: v, Fraction: f, Scaled: f < 1}
			if secs > 0 {
				c.Rate = float64(v) / secs
			}
			s.Counters[MetricName(id)] = c
		}
		if v, _, ok := g.Count(abi.ProcCounterRuntime); ok && secs > 0 {
			pct := float64(v) / 1e9 / secs * 100
			s.CPUPercent = &pct
		}
		s.Ratios = map[string]CgroupRatio{}
		if g.Has(int(pmu.PAPI_TOT_INS)) && g.Has(int(pmu.PAPI_TOT_CYC)) {
			s.Ratios["ipc"] = ratio(&g, pmu.PAPI_TOT_INS, pmu.PAPI_TOT_CYC, 1)
		}
		if g.Has(int(pmu.PAPI_L3_TCM)) && g.Has(int(pmu.PAPI_TOT_INS)) {
			s.Ratios["mpki"] = ratio(&g, pmu.PAPI_L3_TCM, pmu.PAPI_TOT_INS, 1000)
		}
		if len(s.Ratios) == 0 {
			s.Ratios = nil
		}
		out = append(out, s)
	}
	return out
}

func ratio(g *Cgroup, num, den pmu.PresetID, scale float64) CgroupRatio {
	r, err := g.Ratio(int(num), int(den))
	if err != nil {
		return CgroupRatio{Note: err.Error()}
	}
	r *= scale
	_, f, _ := g.Count(int(num))
	return CgroupRatio{Value: &r, Scaled: f < 1}
}

// CgroupStats reads the cgroups section twice, interval apart.
func (c *Client) CgroupStats(ctx context.Context, interval time.Duration, n CgroupNamer) ([]CgroupStat, error) {
	if interval <= 0 {
		interval = time.Second
	}
	a, err := c.Cgroups(n)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	t := time.NewTimer(interval)
	select {
	case <-ctx.Done():
		t.Stop()
		return nil, ctx.Err()
	case <-t.C:
	}
	b, err := c.Cgroups(n)
	if err != nil {
		return nil, err
	}
	return CgroupDelta(a, b, time.Since(t0)), nil
}
