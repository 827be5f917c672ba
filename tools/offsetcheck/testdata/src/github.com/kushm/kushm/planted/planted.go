// Package planted handles region bytes (it imports abi) and has literal
// offsets planted in it: the analyzer must report each one marked want.
package planted

import (
	"encoding/binary"
	"unsafe"

	"github.com/kushm/kushm/internal/abi"
)

func bad(b []byte, p unsafe.Pointer, off int, arr *[64]byte) uint64 {
	v := uint64(binary.LittleEndian.Uint32(b[8:])) // want `literal region offset b\[8:\]`
	v += binary.LittleEndian.Uint64(b[off+16:])    // want `literal region offset`
	v += uint64(b[24])                             // want `literal region offset b\[24\]`
	v += uint64(arr[12])                           // want `literal region offset`
	v += *(*uint64)(unsafe.Add(p, 48))             // want `literal region offset unsafe.Add\(p, 48\)`
	v += *(*uint64)(unsafe.Add(p, uintptr(off)+8)) // want `literal region offset`
	copy(b[16:32], "comm")                         // want `literal region offset`
	return v
}

func ld32(p unsafe.Pointer, off uintptr) uint32 { return *(*uint32)(unsafe.Add(p, off)) }

func helpers(p unsafe.Pointer, n int) uint32 {
	v := ld32(p, 16) // want `literal region offset ld32\(p, 16\)`
	v += ld32(p, abi.HeaderStateOff)
	v += ld32(p, 0)
	v += uint32(max(n, 16)) // not an offset parameter
	return v
}

func good(b []byte, p unsafe.Pointer, i, end int, xs []int) uint64 {
	v := binary.LittleEndian.Uint64(b[abi.HeaderStateOff:]) // a named ABI offset
	v += binary.LittleEndian.Uint64(b[8*i:])                // a stride
	v += uint64(len(b[end+1:]))                             // stepping over a delimiter
	v += uint64(b[0])                                       // the start
	v += uint64(xs[3])                                      // not bytes
	v += *(*uint64)(unsafe.Add(p, 8*i))
	//kushm:offsets-ok a BPF instruction, not region bytes
	v += uint64(b[1] & 0xf)
	v += uint64(b[4]) //kushm:offsets-ok an Ethernet header
	return v + allowedFunc(b)
}

// allowedFunc parses a foreign format.
//
//kushm:offsets-ok an ELF header, not region bytes
func allowedFunc(b []byte) uint64 { return binary.LittleEndian.Uint64(b[24:]) }
