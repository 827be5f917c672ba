package client

import (
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
	"unsafe"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/errs"
	"github.com/kushm/kushm/internal/sysstat"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
)

// The syscall latency statistics and thresholds of a region (the
// "syscalls" table and the control section's threshold fields): the
// reader's side of the tracker's kfuncs and of the userspace runtime.

// NumSyscalls bounds the syscall numbers with statistics and overrides.
const NumSyscalls = abi.NumSyscallOverrides

// ErrNoSyscallTable: the region has no "syscalls" table.
var ErrNoSyscallTable = errors.New("region has no syscalls table")

// SyscallName is the x86_64 name of syscall nr, or "sys_<nr>".
func SyscallName(nr uint32) string { return sysstat.SyscallName(nr) }

// SyscallNumber is the inverse of SyscallName.
func SyscallNumber(name string) (uint32, bool) { return sysstat.SyscallNumber(name) }

// SyscallParams are the global threshold parameters in force (control section,
// validated as the kernel does: out-of-range values mean the default).
type SyscallParams struct {
	Kx100       uint64 // k·100
	Warmup      uint64 // samples before a threshold exists
	Mode        uint32 // abi.ThMode*: the default rule (sigma, quantile, interp)
	Qppm        uint32 // q·10^6 of the quantile modes
	FactorX1000 uint64 // factor·1000 of the quantile modes
	DecayShift  uint32 // h: each CPU halves its slots every 2^h samples
}

// Raw turns validated parameters back into control values: a value equal
// to its default becomes 0 (default), so that later changes of the default
// apply; SetSyscallParams(c.SyscallParams().Raw()) changes nothing.
func (p SyscallParams) Raw() SyscallParams {
	if p.Kx100 == abi.DefaultKx100 {
		p.Kx100 = 0
	}
	if p.Warmup == abi.DefaultWarmup {
		p.Warmup = 0
	}
	if p.Qppm == abi.DefaultQppm {
		p.Qppm = 0
	}
	if p.FactorX1000 == abi.DefaultFactorX1000 {
		p.FactorX1000 = 0
	}
	if p.DecayShift == abi.DefaultDecayShift {
		p.DecayShift = 0
	}
	if p.Mode == abi.ThModeSigma {
		p.Mode = 0
	}
	return p
}

// ModeName names a threshold mode: "k·σ", "quantile" (the bucket bound)
// or "interp" (interpolated quantile).
func ModeName(mode uint32) string {
	switch mode {
	case abi.ThModeQuantile:
		return "quantile"
	case abi.ThModeInterp:
		return "interp"
	}
	return "k·σ"
}

// ParseMode is the inverse of ModeName ("sigma" is accepted for k·σ).
func ParseMode(s string) (uint32, bool) {
	switch s {
	case "k·σ", "sigma", "ksigma":
		return abi.ThModeSigma, true
	case "quantile":
		return abi.ThModeQuantile, true
	case "interp":
		return abi.ThModeInterp, true
	}
	return 0, false
}

func control(r *shm.Region) (*abi.Control, error) {
	sec, err := r.Section(abi.SecNameControl)
	if err != nil {
		return nil, err
	}
	b, err := r.Bytes(sec)
	if err != nil {
		return nil, err
	}
	if len(b) < abi.ControlSize {
		return nil, fmt.Errorf("control section: %d bytes: %w", len(b), shm.ErrCorrupt)
	}
	return (*abi.Control)(unsafe.Pointer(&b[0])), nil
}

func readGlobal(c *abi.Control) sysstat.Global {
	if c == nil {
		return sysstat.Global{}
	}
	return sysstat.Global{
		Mode: atomic.LoadUint32(&c.ThMode), Kx100: atomic.LoadUint32(&c.Kx100),
		Warmup: atomic.LoadUint32(&c.Warmup), Qppm: atomic.LoadUint32(&c.Qppm),
		FactorX1000: atomic.LoadUint32(&c.FactorX1000), DecayShift: atomic.LoadUint32(&c.DecayShift),
	}
}

func readParams(c *abi.Control) SyscallParams {
	g := readGlobal(c)
	p := sysstat.PolicyOf(g, 0)
	return SyscallParams{Kx100: p.Kx100, Warmup: p.Warmup, Mode: p.Mode, Qppm: p.Qppm,
		FactorX1000: p.FactorX1000, DecayShift: sysstat.ValidDecayShift(g.DecayShift)}
}

// SyscallParams returns the threshold parameters of the region.
func (c *Client) SyscallParams() SyscallParams {
	var p SyscallParams
	if shm.Guard(func() error { p = c.syscallParams(); return nil }) != nil {
		return readParams(nil)
	}
	return p
}

func (c *Client) syscallParams() SyscallParams {
	ctl, _ := control(c.r)
	return readParams(ctl)
}

// SyscallStat is the merged statistics of one syscall, with its threshold.
type SyscallStat struct {
	NR          uint32 `json:"nr"`
	Name        string `json:"name"`
	Count       uint64 `json:"count"`
	MeanNs      uint64 `json:"mean_ns"`
	StdDevNs    uint64 `json:"stddev_ns"`
	MinNs       uint64 `json:"min_ns"`
	MaxNs       uint64 `json:"max_ns"`
	LastNs      uint64 `json:"last_ns"`
	Outliers    uint64 `json:"outliers"`
	ThresholdNs uint64 `json:"threshold_ns"` // 0: warming up
	Override    bool   `json:"override"`     // ThresholdNs is the override
	Mode        string `json:"mode"`         // the rule in force: k·σ, quantile, interp (or override)
	M2          uint64 `json:"m2"`
	SumNs       uint64 `json:"sum_ns"`
	// The histogram (ABI 1.4; zero for a region without one): Count,
	// SumNs and M2 above describe the decayed window, Total every sample.
	Total  uint64   `json:"total"`
	Decays uint64   `json:"decays"`
	Window uint64   `json:"window"` // samples in the histogram
	P50Ns  uint64   `json:"p50_ns"` // interpolated quantiles of the window
	P90Ns  uint64   `json:"p90_ns"`
	P99Ns  uint64   `json:"p99_ns"`
	P999Ns uint64   `json:"p999_ns"`
	Hist   []Bucket `json:"buckets,omitempty"` // non-empty buckets, in order
}

// Bucket is one non-empty histogram bucket: latencies in (previous LeNs,
// LeNs] ns; Index is the Prometheus native-histogram bucket index
// (schema abi.HistSchema, unit seconds); the zero bucket (0 ns) has
// LeNs 0 and the overflow bucket LeNs 2^64-1.
type Bucket struct {
	Index int    `json:"index"`
	LeNs  uint64 `json:"le_ns"`
	Count uint64 `json:"count"`
}

// buckets lists the non-empty buckets of h.
func buckets(h *sysstat.Hist) []Bucket {
	var out []Bucket
	for b, c := range h.Buckets {
		if c != 0 {
			out = append(out, Bucket{Index: sysstat.HistPromIndex(b), LeNs: sysstat.HistBound(b), Count: c})
		}
	}
	return out
}

// DecodeHist decodes and merges the raw per-CPU slots of a syscalls node
// (slots of abi.SyscallSlotSize bytes carry a histogram; 64-byte slots of
// older regions do not).
func DecodeHist(raw []byte, valueSize int) sysstat.Hist {
	var h sysstat.Hist
	if valueSize < 64 {
		return h
	}
	var s sysstat.Slot
	for j := 0; j+valueSize <= len(raw); j += valueSize {
		if valueSize >= sysstat.SlotSize {
			sysstat.DecodeSlot(raw[j:], &s)
		} else {
			s = sysstat.Slot{Stat: sysstat.Decode(raw[j:])}
		}
		h.MergeSlot(&s)
	}
	return h
}

// decodeSlots decodes the raw per-CPU slots of a syscalls node.
func decodeSlots(raw []byte, valueSize int) []abi.SyscallStat {
	if valueSize < 64 {
		return nil
	}
	out := make([]abi.SyscallStat, len(raw)/valueSize)
	for j := range out {
		out[j] = sysstat.Decode(raw[j*valueSize:])
	}
	return out
}

// MaxSyscallEntries is the largest syscalls table Syscalls reads (the
// kernel module's syscalls_capacity is at most 4096).
const MaxSyscallEntries = 4096

// Syscalls returns the statistics of every syscall in the region's
// "syscalls" table (written by the kfuncs or the userspace runtime), by
// syscall number, each with the threshold in force. It fails with
// ErrNoSyscallTable when the region has no such table.
func (c *Client) Syscalls() ([]SyscallStat, error) { return guarded(c.syscalls) }

func (c *Client) syscalls() ([]SyscallStat, error) {
	r := c.r
	t, err := rcuhash.Open(r, abi.SecNameSyscalls)
	if err != nil {
		if errors.Is(err, shm.ErrNoSection) {
			return nil, fmt.Errorf("read syscalls: %w", ErrNoSyscallTable)
		}
		return nil, fmt.Errorf("read syscalls: %w", err)
	}
	if t.Capacity() > MaxSyscallEntries {
		// Bounded work: a region may claim 2^24 live nodes.
		return nil, fmt.Errorf("read syscalls: a table of %d entries, more than the %d a producer makes: %w", t.Capacity(), MaxSyscallEntries, shm.ErrCorrupt)
	}
	ctl, _ := control(r)
	g := readGlobal(ctl)
	vs := t.ValueSize()
	var out []SyscallStat
	var seen [NumSyscalls]bool
	t.Range(func(e *rcuhash.Entry) bool {
		if e.Key >= NumSyscalls || seen[e.Key] {
			return true // out of range, or a duplicate key: a corrupt table
		}
		seen[e.Key] = true
		h := DecodeHist(e.Slots, vs)
		m := h.Stat
		var word uint64
		if ctl != nil {
			word = atomic.LoadUint64(&ctl.SyscallPolicy[e.Key])
		}
		pol := sysstat.PolicyOf(g, word)
		s := SyscallStat{
			NR: uint32(e.Key), Name: sysstat.SyscallName(uint32(e.Key)),
			Count: m.Count, MeanNs: m.MeanNs, StdDevNs: sysstat.StdDev(m), MinNs: m.MinNs,
			MaxNs: m.MaxNs, LastNs: m.LastNs, Outliers: m.Outliers, M2: m.M2, SumNs: m.SumNs,
			ThresholdNs: sysstat.PolicyThreshold(&h, pol), Mode: ModeName(pol.Mode),
			Total: h.Total, Decays: h.Decays, Window: h.Count(),
			P50Ns: h.Quantile(500_000, true), P90Ns: h.Quantile(900_000, true),
			P99Ns: h.Quantile(990_000, true), P999Ns: h.Quantile(999_000, true),
			Hist: buckets(&h),
		}
		if vs < sysstat.SlotSize { // no histogram: the count is all there is
			s.Total = m.Count
		}
		if ctl != nil {
			if ov := atomic.LoadUint64(&ctl.SyscallOverrideNs[e.Key]); ov != 0 {
				s.ThresholdNs, s.Override, s.Mode = ov, true, "override"
			}
		}
		out = append(out, s)
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].NR < out[j].NR })
	return out, nil
}

// SetSyscallOverride writes a fixed threshold for syscall nr (0 = back to
// the adaptive one). The client must be opened with
// Options.WritableControl.
func (c *Client) SetSyscallOverride(nr uint32, ns uint64) error {
	return shm.Guard(func() error { return c.setSyscallOverride(nr, ns) })
}

func (c *Client) setSyscallOverride(nr uint32, ns uint64) error {
	if nr >= NumSyscalls {
		return fmt.Errorf("set override of syscall %d: %w", nr, errs.ErrInvalid)
	}
	ctl, err := writableControl(c.r)
	if err != nil {
		return fmt.Errorf("set override of syscall %d: %w", nr, err)
	}
	atomic.StoreUint64(&ctl.SyscallOverrideNs[nr], ns)
	return nil
}

// SetSyscallParams writes the global threshold parameters (0 = default for any
// of them): k·100, the warm-up count, the mode, q·10^6, factor·1000 and
// the decay shift h.
func (c *Client) SetSyscallParams(p SyscallParams) error {
	return shm.Guard(func() error { return c.setSyscallParams(p) })
}

func (c *Client) setSyscallParams(p SyscallParams) error {
	if p.Kx100 > abi.MaxKx100 || p.Warmup > abi.MaxWarmup || p.Mode > abi.ThModeInterp ||
		p.Qppm > abi.MaxQppm || p.FactorX1000 > abi.MaxFactorX1000 ||
		(p.DecayShift != 0 && (p.DecayShift < abi.MinDecayShift || p.DecayShift > abi.MaxDecayShift)) {
		return fmt.Errorf("set threshold parameters: %w", errs.ErrInvalid)
	}
	ctl, err := writableControl(c.r)
	if err != nil {
		return fmt.Errorf("set threshold parameters: %w", err)
	}
	atomic.StoreUint32(&ctl.Kx100, uint32(p.Kx100))
	atomic.StoreUint32(&ctl.Warmup, uint32(p.Warmup))
	atomic.StoreUint32(&ctl.ThMode, p.Mode)
	atomic.StoreUint32(&ctl.Qppm, p.Qppm)
	atomic.StoreUint32(&ctl.FactorX1000, uint32(p.FactorX1000))
	atomic.StoreUint32(&ctl.DecayShift, p.DecayShift)
	return nil
}

// SetSyscallPolicy writes syscall nr's own threshold rule: mode (abi.ThMode*;
// ThModeInherit = the global rule again), param (k·100 for k·σ, q·10^6
// for the quantile modes; 0 = the global value) and factor·1000 (quantile
// modes; 0 = the global value).
func (c *Client) SetSyscallPolicy(nr, mode, param, factorX1000 uint32) error {
	return shm.Guard(func() error { return c.setSyscallPolicy(nr, mode, param, factorX1000) })
}

func (c *Client) setSyscallPolicy(nr, mode, param, factorX1000 uint32) error {
	if nr >= NumSyscalls || mode > abi.ThModeInterp || factorX1000 > abi.MaxFactorX1000 ||
		(mode == abi.ThModeSigma && param > abi.MaxKx100) || (mode >= abi.ThModeQuantile && param > abi.MaxQppm) {
		return fmt.Errorf("set policy of syscall %d: %w", nr, errs.ErrInvalid)
	}
	ctl, err := writableControl(c.r)
	if err != nil {
		return fmt.Errorf("set policy of syscall %d: %w", nr, err)
	}
	atomic.StoreUint64(&ctl.SyscallPolicy[nr], sysstat.PolicyWord(mode, param, factorX1000))
	return nil
}

func writableControl(r *shm.Region) (*abi.Control, error) {
	sec, err := r.Section(abi.SecNameControl)
	if err != nil {
		return nil, err
	}
	if !r.Writable(sec) {
		return nil, fmt.Errorf("control section: %w", shm.ErrReadOnly)
	}
	return control(r)
}
