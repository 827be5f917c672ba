package dump

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
)

// Document is a whole region decoded from its schema: the structured
// form of Dump's listing (`kushm dump -o json`, the web view's
// /api/sections). Values a producer did not measure are null.
type Document struct {
	Path     string    `json:"path"`
	Taken    time.Time `json:"taken"` // when the region was read
	ABI      string    `json:"abi"`
	Size     uint64    `json:"size"`
	PageSize uint32    `json:"page_size"`
	NCPUs    uint32    `json:"ncpus"`
	Producer Producer  `json:"producer"`
	Sections []Section `json:"sections"`
}

// Producer is the header's account of who fills the region.
type Producer struct {
	Name         string        `json:"name"`
	Kind         string        `json:"kind"`
	PID          uint32        `json:"pid"`
	Generation   uint64        `json:"generation"`
	Created      time.Time     `json:"created"`
	HeartbeatAge time.Duration `json:"heartbeat_age_ns"`
	Stale        bool          `json:"stale"`
	StaleReason  string        `json:"stale_reason,omitempty"`
}

// Column is one schema column of a section.
type Column struct {
	Name string `json:"name"`
	Unit string `json:"unit"`
	// Kind is "counter", "gauge", "key", "label" or "valid-mask".
	Kind string `json:"kind"`
	// Merge is how per-CPU slots combine: "none", "sum", "min", "max",
	// "last", "welford-count", "welford-sum", "welford-mean",
	// "welford-m2" (with "/g" for Welford group g > 0), or
	// "unspecified" (a value column of a 1.1 region); keys, labels and
	// valid masks are "none".
	Merge string `json:"merge"`
}

// Row is one row of an atomicarr section (one CPU): Values[i] is column
// i's reading, null when its valid bit is clear.
type Row struct {
	Index  int       `json:"index"`
	TimeNs uint64    `json:"time_ns"` // CLOCK_MONOTONIC of the row's sample
	Values []*uint64 `json:"values"`
	Error  string    `json:"error,omitempty"`
}

// Entry is one entry of an rcuhash section: Values[i] is column i's value
// (a number, a string for labels; null when not measured, or when the
// per-CPU slots of a column whose rule is "none" cannot be merged). The
// values of per-CPU slots are merged by each column's rule (Merge).
type Entry struct {
	Key    uint64 `json:"key"`
	Values []any  `json:"values"`
}

// ControlDoc is the decoded control section.
type ControlDoc struct {
	IntervalUs uint32     `json:"interval_us"`
	Kx100      uint32     `json:"kx100"`
	Warmup     uint32     `json:"warmup"`
	Rejected   uint64     `json:"rejected"` // from the read-only header (control_rejected)
	Overrides  []Override `json:"overrides,omitempty"`
}

// Override is a fixed threshold written for one syscall.
type Override struct {
	NR uint32 `json:"nr"`
	Ns uint64 `json:"ns"`
}

// Section is one section: its place, its schema, and its content by kind
// (Rows, Entries, Text or Control). Error says why the content could not
// be read; the other sections are still decoded.
type Section struct {
	Name         string   `json:"name"`
	Kind         string   `json:"kind"`
	Offset       uint64   `json:"offset"`
	Size         uint64   `json:"size"`
	Count        uint32   `json:"count"`
	ElemSize     uint32   `json:"elem_size"`
	UserWritable bool     `json:"user_writable,omitempty"`
	External     bool     `json:"external,omitempty"`
	Columns      []Column `json:"columns,omitempty"`

	Rows []Row `json:"rows,omitempty"`

	Entries    []Entry `json:"entries,omitempty"`
	Live       uint64  `json:"live,omitempty"`
	Capacity   uint64  `json:"capacity,omitempty"`
	InsertFull uint64  `json:"inserts_refused,omitempty"`
	Swept      uint64  `json:"swept,omitempty"`   // rows the producer removed because their process was gone
	Skipped    int     `json:"skipped,omitempty"` // entries changing too fast to read

	Text    []string    `json:"text,omitempty"`
	Control *ControlDoc `json:"control,omitempty"`

	Error string `json:"error,omitempty"`
}

var mergeNames = [...]string{abi.MergeUnspecified: "unspecified", abi.MergeNone: "none", abi.MergeSum: "sum",
	abi.MergeMin: "min", abi.MergeMax: "max", abi.MergeLast: "last", abi.MergeWelfordCount: "welford-count",
	abi.MergeWelfordSum: "welford-sum", abi.MergeWelfordMean: "welford-mean", abi.MergeWelfordM2: "welford-m2"}

func mergeName(c shm.Column) string {
	if !ValueColumn(c) {
		return "none" // keys, labels, valid masks: never merged
	}
	r, g := c.Merge&abi.MergeRuleMask, c.Merge>>abi.MergeGroupShift
	n := fmt.Sprintf("rule %d", r)
	if int(r) < len(mergeNames) {
		n = mergeNames[r]
	}
	if g != 0 {
		n += fmt.Sprintf("/%d", g)
	}
	return n
}

func kindName(k uint8) string {
	switch k {
	case abi.ColCounter:
		return "counter"
	case abi.ColGauge:
		return "gauge"
	case abi.ColKey:
		return "key"
	case abi.ColLabel:
		return "label"
	case abi.ColValidMask:
		return "valid-mask"
	}
	return fmt.Sprintf("kind %d", k)
}

// Decode reads every section of r through its schema. At most maxEntries
// hash entries are listed per section (64 when <= 0).
func Decode(r *shm.Region, maxEntries int) *Document {
	if maxEntries <= 0 {
		maxEntries = 64
	}
	h := r.Header()
	live := r.Liveness()
	d := &Document{
		Path: r.Path(), Taken: time.Now(), ABI: fmt.Sprintf("%d.%d", h.ABIMajor, h.ABIMinor),
		Size: h.RegionSize, PageSize: h.PageSize, NCPUs: h.NCPUs,
		Producer: Producer{
			Name: sanitize(strings.TrimSpace(h.ProducerName)), Kind: shm.ProducerKindName(h.ProducerKind),
			PID: h.ProducerPID, Generation: h.Generation, Created: time.Unix(0, int64(h.CreatedRealNs)).UTC(),
			HeartbeatAge: live.Age, Stale: live.Stale, StaleReason: live.Reason,
		},
	}
	secs := r.Sections()
	for i := range secs {
		s := &secs[i]
		ds := Section{
			Name: sanitize(s.Name), Kind: shm.KindName(s.Kind), Offset: s.Offset, Size: s.Size,
			Count: s.Count, ElemSize: s.ElemSize, UserWritable: s.Flags&abi.SecFlagUserWritable != 0,
			External: s.External(),
		}
		for _, c := range s.Columns {
			ds.Columns = append(ds.Columns, Column{Name: sanitize(c.Name), Unit: sanitize(c.Unit), Kind: kindName(c.Kind), Merge: mergeName(c)})
		}
		var err error
		switch s.Kind {
		case abi.SecAtomicArr:
			err = decodeRows(&ds, r, s)
		case abi.SecRCUHash:
			err = decodeEntries(&ds, r, s, maxEntries)
		case abi.SecText:
			err = decodeText(&ds, r, s)
		case abi.SecControl:
			err = decodeControl(&ds, r, s, maxEntries)
		}
		if err != nil {
			ds.Error = err.Error()
		}
		d.Sections = append(d.Sections, ds)
	}
	return d
}

func decodeRows(ds *Section, r *shm.Region, s *shm.Section) error {
	a, err := atomicarr.Open(r, s.Name)
	if err != nil {
		return err
	}
	var snap atomicarr.Snapshot
	for row := 0; row < a.Rows(); row++ {
		dr := Row{Index: row, Values: make([]*uint64, len(s.Columns))}
		if err := a.Snapshot(row, &snap); err != nil {
			dr.Error = err.Error()
			ds.Rows = append(ds.Rows, dr)
			continue
		}
		dr.TimeNs = snap.TimeNs
		for i, c := range s.Columns {
			if c.Offset >= abi.RowSlotsOff && c.Type == abi.ColU64 && (c.Offset-abi.RowSlotsOff)%8 == 0 {
				if slot := int(c.Offset-abi.RowSlotsOff) / 8; snap.Has(slot) {
					v := snap.Vals[slot]
					dr.Values[i] = &v
				}
			}
		}
		ds.Rows = append(ds.Rows, dr)
	}
	return nil
}

// value decodes column c of elem: a number, a string, or nil if it does
// not fit.
func value(c shm.Column, elem []byte) any {
	end := uint64(c.Offset) + uint64(c.Size)
	if end > uint64(len(elem)) {
		return nil
	}
	f := elem[c.Offset:end]
	switch {
	case c.Type == abi.ColU64 && c.Size == 8:
		return binary.LittleEndian.Uint64(f)
	case c.Type == abi.ColS64 && c.Size == 8:
		return int64(binary.LittleEndian.Uint64(f))
	case c.Type == abi.ColU32 && c.Size == 4:
		return binary.LittleEndian.Uint32(f)
	case c.Type == abi.ColChars:
		s, _, _ := strings.Cut(string(f), "\x00")
		return sanitize(s)
	case c.Type == abi.ColU16 && c.Size == 2:
		return binary.LittleEndian.Uint16(f)
	case c.Type == abi.ColU16 && c.Size%2 == 0:
		// An array (a histogram): its non-zero elements as
		// "index:value,…" (one word in a listing), "none" if all are 0.
		var b strings.Builder
		for i := 0; i < int(c.Size/2); i++ {
			if v := binary.LittleEndian.Uint16(f[2*i:]); v != 0 {
				if b.Len() > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "%d:%d", i, v)
			}
		}
		if b.Len() == 0 {
			return "none"
		}
		return b.String()
	}
	return nil
}

func decodeEntries(ds *Section, r *shm.Region, s *shm.Section, max int) error {
	t, err := rcuhash.Open(r, s.Name)
	if err != nil {
		return err
	}
	if n := r.Header().NCPUs; t.NSlots() > int(n) {
		// One value slot, or one per CPU: more would cost the dump
		// time and memory for nothing a producer writes.
		return fmt.Errorf("%d value slots for %d CPUs: %w", t.NSlots(), n, shm.ErrCorrupt)
	}
	st := t.Stats()
	ds.Live, ds.Capacity, ds.InsertFull, ds.Swept = uint64(st.Count), uint64(t.Capacity()), uint64(st.InsertFull), st.Swept
	vs := t.ValueSize()
	ds.Skipped = t.Range(func(e *rcuhash.Entry) bool {
		// The value: the slots merged by each column's rule.
		val := make([]byte, vs)
		merged := Merge(s.Columns, e.Slots, t.NSlots(), vs, val)
		// A valid-mask column says which value columns hold readings.
		mask, hasMask := ^uint64(0), false
		for _, c := range s.Columns {
			if c.Kind == abi.ColValidMask && c.Size == 8 && uint64(c.Offset)+8 <= uint64(len(e.Data)) {
				mask, hasMask = binary.LittleEndian.Uint64(e.Data[c.Offset:]), true
			}
		}
		de := Entry{Key: e.Key, Values: make([]any, len(s.Columns))}
		for i, c := range s.Columns {
			switch c.Kind {
			case abi.ColKey:
				de.Values[i] = e.Key
			case abi.ColLabel:
				de.Values[i] = value(c, e.Data)
			case abi.ColValidMask:
				de.Values[i] = mask
			default:
				if !merged[i] || hasMask && (c.ID >= 64 || mask&(1<<c.ID) == 0) {
					continue
				}
				de.Values[i] = value(c, val)
			}
		}
		ds.Entries = append(ds.Entries, de)
		return len(ds.Entries) < max
	})
	return nil
}

func decodeText(ds *Section, r *shm.Region, s *shm.Section) error {
	txt, truncated, err := r.Text(s, shm.MaxText)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimRight(txt, "\n"), "\n") {
		// A TAB separates fields (the info section's entries): each field
		// is sanitised, the TABs stay (harmless whitespace on a terminal).
		fields := strings.Split(line, "\t")
		for i := range fields {
			fields[i] = sanitize(fields[i])
		}
		ds.Text = append(ds.Text, strings.Join(fields, "\t"))
	}
	if truncated {
		ds.Text = append(ds.Text, fmt.Sprintf("[text longer than %d bytes: the rest is not read]", shm.MaxText))
	}
	return nil
}

func decodeControl(ds *Section, r *shm.Region, s *shm.Section, max int) error {
	b, err := r.Bytes(s)
	if err != nil {
		return err
	}
	if len(b) < abi.ControlSize {
		return fmt.Errorf("control section of %d bytes: %w", len(b), shm.ErrCorrupt)
	}
	p, err := abi.DecodeControlParams(b)
	if err != nil {
		return err
	}
	c := &ControlDoc{IntervalUs: p.IntervalUs, Kx100: p.Kx100, Warmup: p.Warmup, Rejected: r.Header().ControlRejected}
	for nr := 0; nr < abi.NumSyscallOverrides && len(c.Overrides) < max; nr++ {
		if v := abi.ControlOverride(b, nr); v != 0 {
			c.Overrides = append(c.Overrides, Override{NR: uint32(nr), Ns: v})
		}
	}
	ds.Control = c
	return nil
}
