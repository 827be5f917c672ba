// Package sanitize makes text read from a region safe to print: the one
// function every reader applies to strings a producer (or whoever wrote
// the file) chose, before they reach a terminal, a table or a log line.
//
// A region is shared memory another user may have written: a process
// name or an info line can hold terminal escapes (ESC [ ... ; OSC 52 to
// set the clipboard; C1 CSI), carriage returns that overwrite what was
// printed, or bidirectional overrides that reorder it. Line replaces every
// such character, and every byte that is not UTF-8, with '?'.
//
// Nothing here holds state; the functions are safe for concurrent use.
package sanitize

import (
	"strings"
	"unicode/utf8"
)

// Replacement is what an unsafe character becomes.
const Replacement = '?'

// Unsafe reports whether r must not reach a terminal: C0 controls (tab
// included), DEL, C1 controls, the Unicode bidirectional embeddings,
// overrides and isolates, and utf8.RuneError (an invalid byte).
func Unsafe(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true
	case r == utf8.RuneError:
		return true
	}
	return false
}

// Line returns s with every unsafe character replaced (newlines too:
// the result is one line).
func Line(s string) string {
	clean := true
	for _, r := range s {
		if Unsafe(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s { // an invalid byte comes as utf8.RuneError
		if Unsafe(r) {
			r = Replacement
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Lines splits s at newlines and returns each line sanitised.
func Lines(s string) []string {
	parts := strings.Split(s, "\n")
	for i, p := range parts {
		parts[i] = Line(p)
	}
	return parts
}
