// Package sysfsev parses the perf PMU descriptions the kernel publishes
// under /sys/bus/event_source/devices/<pmu>: format/<field> files such as
// "config:8-15" and events/<name> files such as "event=0x04,umask=0x03".
package sysfsev

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kushm/kushm/internal/errs"
)

// ErrSyntax is wrapped by every parse error.
// It refines kushm's errs.ErrSyntax (msr.ErrSyntax matches it too).
var ErrSyntax = errs.Refine(errs.ErrSyntax, "invalid sysfs PMU description")

// Field is where one format field lives: in config, config1 or config2,
// in one or more bit ranges (low bits of the value go to the first range).
type Field struct {
	Config int // 0, 1 or 2
	Ranges [][2]uint
}

// ParseFormat parses a format file, e.g. "config:0-7" or "config1:0-3,32-35".
func ParseFormat(s string) (Field, error) {
	s = strings.TrimSpace(s)
	reg, bitsStr, ok := strings.Cut(s, ":")
	if !ok {
		return Field{}, fmt.Errorf("format %q: %w", s, ErrSyntax)
	}
	var f Field
	switch reg {
	case "config":
	case "config1":
		f.Config = 1
	case "config2":
		f.Config = 2
	default:
		return Field{}, fmt.Errorf("format %q: unknown register: %w", s, ErrSyntax)
	}
	for _, r := range strings.Split(bitsStr, ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		a, err := strconv.ParseUint(lo, 10, 8)
		if err != nil || a > 63 {
			return Field{}, fmt.Errorf("format %q: %w", s, ErrSyntax)
		}
		b := a
		if isRange {
			b, err = strconv.ParseUint(hi, 10, 8)
			if err != nil || b > 63 || b < a {
				return Field{}, fmt.Errorf("format %q: %w", s, ErrSyntax)
			}
		}
		f.Ranges = append(f.Ranges, [2]uint{uint(a), uint(b)})
	}
	return f, nil
}

// Term is one "name=value" (or bare "name", meaning 1) of an event string.
type Term struct {
	Name  string
	Value uint64
}

// ParseEvent parses an events/<name> file: comma-separated terms.
func ParseEvent(s string) ([]Term, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("event %q: empty: %w", s, ErrSyntax)
	}
	var out []Term
	for _, t := range strings.Split(s, ",") {
		name, val, hasVal := strings.Cut(strings.TrimSpace(t), "=")
		if name == "" {
			return nil, fmt.Errorf("event %q: %w", s, ErrSyntax)
		}
		v := uint64(1)
		if hasVal {
			var err error
			if v, err = strconv.ParseUint(val, 0, 64); err != nil {
				return nil, fmt.Errorf("event %q: %w", s, ErrSyntax)
			}
		}
		out = append(out, Term{name, v})
	}
	return out, nil
}

// Encode places the terms into config, config1 and config2 according to
// the formats. Terms without a format are an error.
func Encode(terms []Term, formats map[string]Field) (cfg [3]uint64, err error) {
	for _, t := range terms {
		f, ok := formats[t.Name]
		if !ok {
			return cfg, fmt.Errorf("event term %q has no format: %w", t.Name, ErrSyntax)
		}
		v := t.Value
		for _, r := range f.Ranges {
			width := r[1] - r[0] + 1
			mask := ^uint64(0)
			if width < 64 {
				mask = 1<<width - 1
			}
			cfg[f.Config] |= (v & mask) << r[0]
			if width >= 64 {
				v = 0
			} else {
				v >>= width
			}
		}
		if v != 0 {
			return cfg, fmt.Errorf("event term %s=%#x does not fit its format: %w", t.Name, t.Value, ErrSyntax)
		}
	}
	return cfg, nil
}

// PMU is a parsed /sys/bus/event_source/devices/<name> directory.
type PMU struct {
	Name    string
	Dir     string
	Type    uint32
	Formats map[string]Field
	// CPUs is the cpumask file (uncore PMUs: one CPU per unit), or nil.
	CPUs string
}

// LoadPMU reads dir (a devices/<name> directory).
func LoadPMU(dir string) (*PMU, error) {
	b, err := os.ReadFile(filepath.Join(dir, "type"))
	if err != nil {
		return nil, err
	}
	t, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil {
		return nil, fmt.Errorf("%s/type: %w", dir, ErrSyntax)
	}
	p := &PMU{Name: filepath.Base(dir), Dir: dir, Type: uint32(t), Formats: map[string]Field{}}
	if ents, err := os.ReadDir(filepath.Join(dir, "format")); err == nil {
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(dir, "format", e.Name()))
			if err != nil {
				continue
			}
			f, err := ParseFormat(string(b))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p.Name, err)
			}
			p.Formats[e.Name()] = f
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cpumask")); err == nil {
		p.CPUs = strings.TrimSpace(string(b))
	}
	return p, nil
}

// Event is a named event of a PMU, encoded.
type Event struct {
	Name   string
	Config [3]uint64
	// Scale and Unit come from events/<name>.scale and .unit (Scale 1 and
	// Unit "" when absent).
	Scale float64
	Unit  string
}

// Event reads and encodes events/<name>. A missing file returns an error
// matching os.ErrNotExist.
func (p *PMU) Event(name string) (Event, error) {
	b, err := os.ReadFile(filepath.Join(p.Dir, "events", name))
	if err != nil {
		return Event{}, err
	}
	terms, err := ParseEvent(string(b))
	if err != nil {
		return Event{}, fmt.Errorf("%s/%s: %w", p.Name, name, err)
	}
	cfg, err := Encode(terms, p.Formats)
	if err != nil {
		return Event{}, fmt.Errorf("%s/%s: %w", p.Name, name, err)
	}
	ev := Event{Name: name, Config: cfg, Scale: 1}
	if b, err := os.ReadFile(filepath.Join(p.Dir, "events", name+".scale")); err == nil {
		if f, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64); err == nil && f > 0 {
			ev.Scale = f
		}
	}
	if b, err := os.ReadFile(filepath.Join(p.Dir, "events", name+".unit")); err == nil {
		ev.Unit = strings.TrimSpace(string(b))
	}
	return ev, nil
}
