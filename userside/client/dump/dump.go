// Package dump is the reader API's generic decoder: it decodes any kushm
// region through the schema's columns only: it has no code written for a
// particular section, which is what the self-describing format promises. Decode gives the structured
// Document (`kushm dump -o json`, the web view's /api/sections); Dump
// writes the same content for people (`kushm dump`). Rows and hash
// entries are read through atomicarr and rcuhash, so a dump validates and
// reads the region exactly as every other reader does.
package dump

import (
	"fmt"
	safe "github.com/kushm/kushm/internal/sanitize"
	"io"
	"strings"
	"time"

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
	d := Decode(r, o.MaxEntries)
	p := d.Producer
	fmt.Fprintf(w, "region %s: ABI %s, %d bytes, page %d, %d CPUs\n", d.Path, d.ABI, d.Size, d.PageSize, d.NCPUs)
	fmt.Fprintf(w, "producer: %s (%s, pid %d, generation %d), created %s, heartbeat %v ago",
		p.Name, p.Kind, p.PID, p.Generation, p.Created.Format(time.RFC3339), p.HeartbeatAge.Round(time.Millisecond))
	if p.Stale {
		fmt.Fprintf(w, " (STALE: %s)", p.StaleReason)
	}
	fmt.Fprintln(w)
	for i := range d.Sections {
		writeSection(w, &d.Sections[i])
	}
	return nil
}

func writeSection(w io.Writer, s *Section) {
	fmt.Fprintf(w, "\nsection %q: %s, offset %#x, %d bytes, %d x %d", s.Name, s.Kind, s.Offset, s.Size, s.Count, s.ElemSize)
	if s.UserWritable {
		fmt.Fprint(w, ", user-writable")
	}
	if s.External {
		fmt.Fprint(w, ", in .ctl file")
	}
	fmt.Fprintln(w)
	if s.Error != "" {
		fmt.Fprintf(w, "  (not available: %s)\n", s.Error)
		return
	}
	switch s.Kind {
	case "schema":
		fmt.Fprintf(w, "  %d columns\n", s.Count)
	case "atomicarr":
		for _, row := range s.Rows {
			if row.Error != "" {
				fmt.Fprintf(w, "  cpu %d: (%s)\n", row.Index, row.Error)
				continue
			}
			parts := make([]string, len(s.Columns))
			for i, c := range s.Columns {
				v := "n/a"
				if row.Values[i] != nil {
					v = fmt.Sprint(*row.Values[i])
				}
				parts[i] = c.Name + "=" + v
			}
			fmt.Fprintf(w, "  cpu %d: %s\n", row.Index, strings.Join(parts, " "))
		}
	case "rcuhash":
		fmt.Fprintf(w, "  %d live of %d, %d inserts refused (full)", s.Live, s.Capacity, s.InsertFull)
		if s.Swept != 0 {
			fmt.Fprintf(w, ", %d swept (their process was gone)", s.Swept)
		}
		fmt.Fprintln(w)
		for _, e := range s.Entries {
			var parts []string
			for i, c := range s.Columns {
				switch v := e.Values[i]; {
				case c.Kind == "valid-mask":
				case v == nil:
					parts = append(parts, c.Name+"=n/a")
				case c.Kind == "label":
					parts = append(parts, fmt.Sprintf("%s=%q", c.Name, v))
				default:
					parts = append(parts, fmt.Sprintf("%s=%v", c.Name, v))
				}
			}
			if len(s.Columns) == 0 {
				parts = append(parts, fmt.Sprintf("key=%d", e.Key))
			}
			fmt.Fprintf(w, "  %s\n", strings.Join(parts, " "))
		}
		if s.Skipped > 0 {
			fmt.Fprintf(w, "  (%d entries changing too fast to read)\n", s.Skipped)
		}
	case "text":
		for _, line := range s.Text {
			fmt.Fprintf(w, "  %s\n", line)
		}
	case "control":
		c := s.Control
		fmt.Fprintf(w, "  interval_us=%d kx100=%d warmup=%d rejected=%d (header)\n", c.IntervalUs, c.Kx100, c.Warmup, c.Rejected)
		for _, o := range c.Overrides {
			fmt.Fprintf(w, "  override syscall %d: %d ns\n", o.NR, o.Ns)
		}
	}
}

// sanitize is the readers' one sanitiser (internal/sanitize).
func sanitize(s string) string { return safe.Line(s) }
