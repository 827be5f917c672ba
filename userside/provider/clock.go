package provider

import _ "unsafe" // go:linkname

// nanotime is the runtime's CLOCK_MONOTONIC read through the vDSO (no
// system call), the clock of the region's time_ns fields and heartbeat.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

// monoNs is CLOCK_MONOTONIC in ns.
func monoNs() uint64 { return uint64(nanotime()) }
