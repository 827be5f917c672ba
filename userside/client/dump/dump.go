// Package dump is the reader API's generic decoder: it writes a
// human-readable listing of any kushm region, decoding every section
// through the schema's columns only: it has no
// code written for a particular section, which is what the
// self-describing format promises (`kushm dump`). Rows and hash entries
// are read through atomicarr and rcuhash, so a dump validates and reads
// the region exactly as every other reader does.
package dump

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
)

// Options control Dump.
type Options struct {
	// MaxEntries bounds the hash entries listed per section (default 64).
	MaxEntries int
}

// Dump writes the listing of r to w. Sections it cannot read (corrupt
// geometry, a control file this process could not open) are listed with
// the reason; the rest are still dumped.
func Dump(r *shm.Region, w io.Writer, o Options) error {
	if o.MaxEntries <= 0 {
		o.MaxEntries = 64
	}
	h := r.Header()
	live := r.Liveness()
	fmt.Fprintf(w, "region %s: ABI %d.%d, %d bytes, page %d, %d CPUs\n", r.Path(), h.ABIMajor, h.ABIMinor, h.RegionSize, h.PageSize, h.NCPUs)
	fmt.Fprintf(w, "producer: %s (%s, pid %d, generation %d), created %s, heartbeat %v ago",
		h.ProducerName, shm.ProducerKindName(h.ProducerKind), h.ProducerPID, h.Generation,
		time.Unix(0, int64(h.CreatedRealNs)).UTC().Format(time.RFC3339), live.Age.Round(time.Millisecond))
	if live.Stale {
		fmt.Fprintf(w, " (STALE: %s)", live.Reason)
	}
	fmt.Fprintln(w)
	secs := r.Sections()
	for i := range secs {
		s := &secs[i]
		fmt.Fprintf(w, "\nsection %q: %s, offset %#x, %d bytes, %d x %d", s.Name, shm.KindName(s.Kind), s.Offset, s.Size, s.Count, s.ElemSize)
		if s.Flags&abi.SecFlagUserWritable != 0 {
			fmt.Fprint(w, ", user-writable")
		}
		if s.External() {
			fmt.Fprint(w, ", in .ctl file")
		}
		fmt.Fprintln(w)
		var err error
		switch s.Kind {
		case abi.SecAtomicArr:
			err = rows(w, r, s)
		case abi.SecRCUHash:
			err = entries(w, r, s, o.MaxEntries)
		case abi.SecText:
			err = text(w, r, s)
		case abi.SecControl:
			err = control(w, r, s, o.MaxEntries)
		case abi.SecSchema:
			fmt.Fprintf(w, "  %d columns\n", s.Count)
		}
		if err != nil {
			fmt.Fprintf(w, "  (not available: %v)\n", err)
		}
	}
	return nil
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// field formats column c of elem, or "?" if it does not fit.
func field(c shm.Column, elem []byte) string {
	end := uint64(c.Offset) + uint64(c.Size)
	if end > uint64(len(elem)) {
		return "?"
	}
	f := elem[c.Offset:end]
	switch {
	case c.Type == abi.ColU64 && c.Size == 8:
		return fmt.Sprint(binary.LittleEndian.Uint64(f))
	case c.Type == abi.ColS64 && c.Size == 8:
		return fmt.Sprint(int64(binary.LittleEndian.Uint64(f)))
	case c.Type == abi.ColU32 && c.Size == 4:
		return fmt.Sprint(binary.LittleEndian.Uint32(f))
	case c.Type == abi.ColChars:
		s, _, _ := strings.Cut(string(f), "\x00")
		return fmt.Sprintf("%q", sanitize(s))
	}
	return "?"
}

func rows(w io.Writer, r *shm.Region, s *shm.Section) error {
	a, err := atomicarr.Open(r, s.Name)
	if err != nil {
		return err
	}
	var snap atomicarr.Snapshot
	for row := 0; row < a.Rows(); row++ {
		if err := a.Snapshot(row, &snap); err != nil {
			fmt.Fprintf(w, "  cpu %d: (%v)\n", row, err)
			continue
		}
		var parts []string
		for _, c := range s.Columns {
			v := "n/a"
			if c.Offset >= abi.RowSlotsOff && c.Type == abi.ColU64 && (c.Offset-abi.RowSlotsOff)%8 == 0 {
				if slot := int(c.Offset-abi.RowSlotsOff) / 8; snap.Has(slot) {
					v = fmt.Sprint(snap.Vals[slot])
				}
			}
			parts = append(parts, c.Name+"="+v)
		}
		fmt.Fprintf(w, "  cpu %d: %s\n", row, strings.Join(parts, " "))
	}
	return nil
}

func entries(w io.Writer, r *shm.Region, s *shm.Section, max int) error {
	t, err := rcuhash.Open(r, s.Name)
	if err != nil {
		return err
	}
	st := t.Stats()
	fmt.Fprintf(w, "  %d live of %d, %d inserts refused (full)\n", st.Count, t.Capacity(), st.InsertFull)
	vs := t.ValueSize()
	val := make([]byte, vs)
	shown := 0
	skipped := t.Range(func(e *rcuhash.Entry) bool {
		// The value: the slots merged by each column's rule.
		merged := Merge(s.Columns, e.Slots, t.NSlots(), vs, val)
		// A valid-mask column says which value columns hold readings.
		mask, hasMask := ^uint64(0), false
		for _, c := range s.Columns {
			if c.Kind == abi.ColValidMask && c.Size == 8 && uint64(c.Offset)+8 <= uint64(len(e.Data)) {
				mask, hasMask = binary.LittleEndian.Uint64(e.Data[c.Offset:]), true
			}
		}
		var parts []string
		for i, c := range s.Columns {
			switch c.Kind {
			case abi.ColKey:
				parts = append(parts, fmt.Sprintf("%s=%d", c.Name, e.Key))
			case abi.ColLabel:
				parts = append(parts, c.Name+"="+field(c, e.Data))
			case abi.ColValidMask:
			default:
				if hasMask && (c.ID >= 64 || mask&(1<<c.ID) == 0) {
					parts = append(parts, c.Name+"=n/a")
					continue
				}
				if !merged[i] {
					parts = append(parts, c.Name+"=?")
					continue
				}
				parts = append(parts, c.Name+"="+field(c, val))
			}
		}
		if len(s.Columns) == 0 {
			parts = append(parts, fmt.Sprintf("key=%d", e.Key))
		}
		fmt.Fprintf(w, "  %s\n", strings.Join(parts, " "))
		shown++
		return shown < max
	})
	if skipped > 0 {
		fmt.Fprintf(w, "  (%d entries changing too fast to read)\n", skipped)
	}
	return nil
}

func text(w io.Writer, r *shm.Region, s *shm.Section) error {
	b, err := r.Bytes(s)
	if err != nil {
		return err
	}
	txt, _, _ := strings.Cut(string(b), "\x00")
	for _, line := range strings.Split(strings.TrimRight(txt, "\n"), "\n") {
		fmt.Fprintf(w, "  %s\n", sanitize(line))
	}
	return nil
}

func control(w io.Writer, r *shm.Region, s *shm.Section, max int) error {
	b, err := r.Bytes(s)
	if err != nil {
		return err
	}
	if len(b) < abi.ControlSize {
		return fmt.Errorf("control section of %d bytes: %w", len(b), shm.ErrCorrupt)
	}
	le := binary.LittleEndian
	fmt.Fprintf(w, "  interval_us=%d kx100=%d warmup=%d rejected=%d (header)\n",
		le.Uint32(b[8:]), le.Uint32(b[12:]), le.Uint32(b[16:]), r.Header().ControlRejected)
	n := 0
	for nr := 0; nr < abi.NumSyscallOverrides && n < max; nr++ {
		if v := le.Uint64(b[abi.ControlHeadSize+8*nr:]); v != 0 {
			fmt.Fprintf(w, "  override syscall %d: %d ns\n", nr, v)
			n++
		}
	}
	return nil
}
