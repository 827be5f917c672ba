package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// This file holds the one codec of each fixed layout: every reader and
// writer of these bytes, in any package, goes through it, so no region
// offset is written outside this package (the offsetcheck analyzer run
// by `make check` enforces it).

// ErrShort is returned when a buffer is shorter than the layout it
// should hold.
var ErrShort = errors.New("buffer shorter than the layout")

// Decode fills *v, a pointer to one of this package's fixed-size structs
// (Header, Section, Column, Control, ...), from the start of b
// (little-endian, no alignment needed). It fails with ErrShort when b
// is shorter than the struct.
func Decode(b []byte, v any) error {
	n := binary.Size(v)
	if n < 0 {
		return fmt.Errorf("decode %T: not a fixed-size layout", v)
	}
	if len(b) < n {
		return fmt.Errorf("decode %T: %d bytes, want %d: %w", v, len(b), n, ErrShort)
	}
	_, err := binary.Decode(b, binary.LittleEndian, v)
	return err
}

// Encode writes v, one of this package's fixed-size structs (or a
// pointer to one), at the start of b.
func Encode(b []byte, v any) error {
	n := binary.Size(v)
	if n < 0 {
		return fmt.Errorf("encode %T: not a fixed-size layout", v)
	}
	if len(b) < n {
		return fmt.Errorf("encode %T: %d bytes, want %d: %w", v, len(b), n, ErrShort)
	}
	_, err := binary.Encode(b, binary.LittleEndian, v)
	return err
}

// Entry returns c as the schema entry a producer writes (struct
// kushm_column). It fails for a template or a name or unit that does not
// fit with its NUL.
func (c ColumnDecl) Entry() (Column, error) {
	var e Column
	switch {
	case c.Each != "":
		return e, fmt.Errorf("column template for catalogue %q: expand it first: %w", c.Each, ErrSchema)
	case len(c.Name) >= ColumnNameLen:
		return e, fmt.Errorf("column name %q longer than %d bytes: %w", c.Name, ColumnNameLen-1, ErrSchema)
	case len(c.Unit) >= ColumnUnitLen:
		return e, fmt.Errorf("column %q: unit %q longer than %d bytes: %w", c.Name, c.Unit, ColumnUnitLen-1, ErrSchema)
	}
	copy(e.Name[:], c.Name)
	copy(e.Unit[:], c.Unit)
	e.Offset, e.Type, e.Kind, e.Merge, e.Size, e.ID = c.Offset, c.Type, c.Kind, c.Merge, c.Size, c.ID
	return e, nil
}
