package msr

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Allowlist is an msr-safe style list of MSR addresses with a write mask
// each. A read of an address not on the list fails with ErrNotAllowed; a
// write is allowed only to the bits set in its mask. kushm never writes
// MSRs: every mask of DefaultAllowlist is zero, and no source has a write
// method.
type Allowlist struct {
	masks map[uint32]uint64
}

// DefaultAllowlist is the catalogue, read-only.
func DefaultAllowlist() *Allowlist {
	a := &Allowlist{masks: make(map[uint32]uint64, NumMSRs)}
	for _, e := range catalogue {
		a.masks[e.Addr] = 0
	}
	return a
}

// CheckRead returns nil if addr may be read, else an error matching
// ErrNotAllowed.
func (a *Allowlist) CheckRead(addr uint32) error {
	if _, ok := a.masks[addr]; !ok {
		return fmt.Errorf("read MSR %#x: %w", addr, ErrNotAllowed)
	}
	return nil
}

// CheckWrite returns nil if writing value to addr changes only bits of
// the write mask. With the default list it always fails.
func (a *Allowlist) CheckWrite(addr uint32, bits uint64) error {
	m, ok := a.masks[addr]
	if !ok || bits&^m != 0 {
		return fmt.Errorf("write MSR %#x bits %#x: %w", addr, bits, ErrNotAllowed)
	}
	return nil
}

// WriteMask returns addr's write mask and whether addr is listed.
func (a *Allowlist) WriteMask(addr uint32) (uint64, bool) {
	m, ok := a.masks[addr]
	return m, ok
}

// Addrs returns the listed addresses in ascending order.
func (a *Allowlist) Addrs() []uint32 {
	out := make([]uint32, 0, len(a.masks))
	for k := range a.masks {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// WriteTo writes the list in msr-safe's format:
// "0xADDRESS 0xWRITEMASK # name" per line.
func (a *Allowlist) WriteTo(w io.Writer) (int64, error) {
	var n int64
	k, err := fmt.Fprintf(w, "# MSR # Write Mask # Comment\n")
	n += int64(k)
	if err != nil {
		return n, err
	}
	for _, addr := range a.Addrs() {
		name := ""
		if e, ok := ByAddr(addr); ok {
			name = e.Name
		}
		k, err := fmt.Fprintf(w, "0x%08X 0x%016X # %s\n", addr, a.masks[addr], name)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// ParseAllowlist reads msr-safe's format: one "address writemask" pair
// per line, '#' starts a comment.
func ParseAllowlist(r io.Reader) (*Allowlist, error) {
	a := &Allowlist{masks: map[uint32]uint64{}}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		s, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(s)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("allowlist line %d: want address and write mask: %w", line, ErrSyntax)
		}
		addr, err := strconv.ParseUint(f[0], 0, 32)
		if err != nil {
			return nil, fmt.Errorf("allowlist line %d: address %q: %w", line, f[0], ErrSyntax)
		}
		mask, err := strconv.ParseUint(f[1], 0, 64)
		if err != nil {
			return nil, fmt.Errorf("allowlist line %d: write mask %q: %w", line, f[1], ErrSyntax)
		}
		if _, dup := a.masks[uint32(addr)]; dup {
			return nil, fmt.Errorf("allowlist line %d: address %#x listed twice: %w", line, addr, ErrSyntax)
		}
		a.masks[uint32(addr)] = mask
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read allowlist: %w", err)
	}
	return a, nil
}
