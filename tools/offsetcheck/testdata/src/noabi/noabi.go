// Package noabi does not import abi: it does not handle region bytes and
// is not checked.
package noabi

import "encoding/binary"

func F(b []byte) uint32 { return binary.LittleEndian.Uint32(b[8:]) }
