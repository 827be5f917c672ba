package abi

import (
	"strconv"
	"strings"
)

// InfoEntry is one entry of the info section: something a producer cannot
// read on this machine, and why, as data (the constants Info* name the
// line format and the words of Source and Kind).
type InfoEntry struct {
	What   string // the column: a preset or MSR name
	Source string // InfoSource*
	Kind   string // InfoKind*
	Errno  uint32 // the failing call's error number, 0 if none
	Cause  string // completes "WHAT: not available on this machine, because CAUSE"
}

// infoField makes s one field: tabs, newlines, NULs and the other ASCII
// control bytes become spaces; every other byte stays.
func infoField(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) < 0 {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			b[i] = ' '
		}
	}
	return string(b)
}

// AppendInfoEntry appends e as one line (with its newline) to b.
func AppendInfoEntry(b []byte, e InfoEntry) []byte {
	b = append(b, InfoUnavailable...)
	for _, f := range []string{e.What, e.Source, e.Kind} {
		b = append(b, InfoSep...)
		b = append(b, infoField(f)...)
	}
	b = append(b, InfoSep...)
	b = strconv.AppendUint(b, uint64(e.Errno), 10)
	b = append(b, InfoSep...)
	b = append(b, infoField(e.Cause)...)
	return append(b, '\n')
}

// AppendInfoNote appends a note line ("# note") to b.
func AppendInfoNote(b []byte, note string) []byte {
	b = append(b, InfoNote+" "...)
	b = append(b, infoField(note)...)
	return append(b, '\n')
}

// ParseInfo reads an info section: up to its first NUL (or its end), the
// entries and the notes (without "# "). A line that is neither, or an
// entry with too few fields, an empty what or a bad errno, is skipped:
// the bytes come from the region and are not trusted (control bytes in a
// field become spaces). It never fails.
func ParseInfo(b []byte) (entries []InfoEntry, notes []string) {
	s := string(b)
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	for line := range strings.SplitSeq(s, "\n") {
		if n, ok := strings.CutPrefix(line, InfoNote); ok {
			notes = append(notes, strings.TrimSpace(n))
			continue
		}
		f := strings.SplitN(line, InfoSep, 6)
		if len(f) != 6 || f[0] != InfoUnavailable || f[1] == "" {
			continue
		}
		errno, err := strconv.ParseUint(f[4], 10, 32)
		if err != nil {
			continue
		}
		entries = append(entries, InfoEntry{What: infoField(f[1]), Source: infoField(f[2]), Kind: infoField(f[3]),
			Errno: uint32(errno), Cause: infoField(f[5])})
	}
	return entries, notes
}
