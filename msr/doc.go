// Package msr is a catalogue of model-specific registers kushm reads, an
// allowlist every source enforces, and the sources that read them from
// userspace.
//
// # Catalogue
//
// Entries (ID) are ABI: they are the column index of the region's "msr"
// section, and kmod/include/generated/kushm_msr.h is generated from the
// same table (go generate). Each entry has its address, scope (thread,
// core, package), kind (wrapping counter or status register), counter
// width and decoding (Reader.Read, EnergyUnit, TjMax, ThermReadout,
// PerfStatusMHz).
//
// # Allowlist
//
// The Allowlist follows msr-safe: address and write mask. Every mask is
// zero because kushm never writes an MSR, and no source has a write path.
// Every source checks the allowlist before each read, so a caller-supplied
// narrower list (ParseAllowlist) restricts all of them.
//
// # Sources
//
// Reader tries, per read, in order: DevSource (/dev/cpu/N/msr, pread at
// the MSR address, needs the msr driver and CAP_SYS_RAWIO), PerfSource
// (the perf msr PMU: tsc, aperf, mperf, smi, whichever this kernel and CPU
// offer; values count from the first read, Reading.Absolute is false) and
// PowercapSource (RAPL energy in µJ from /sys/class/powercap, wrapping at
// max_energy_range_uj). All paths are relative to Options.Root, so fixture
// trees can stand in for a machine; perf events are never opened under a
// fixture root.
//
// # Wraparound
//
// RAPL energy and SMI_COUNT are 32-bit counters. Counter extends them to
// 64 bits; when two readings are further apart than one wrap period at a
// plausible maximum rate, it flags the interval as possibly missing a wrap.
// Sample energy faster than Counter.WrapPeriod (about 17 minutes at 250 W
// with the usual 61 µJ unit).
//
// # Errors
//
// A register that cannot be read yields an *UnavailableError: "NAME on cpu
// N: not available on this machine, because REASON", matching
// ErrNotAvailable and one of ErrNoSource (no msr driver, no msr PMU event
// source, no powercap), ErrPermission, ErrNotSupported (the CPU does not
// implement it: EIO, another vendor's register, an event the msr PMU lacks)
// or ErrNotAllowed (not on the allowlist). The reason lists every source
// tried.
//
// # Lifetimes
//
// A Reader and its sources keep file descriptors open (one per CPU for
// /dev/cpu, one per CPU and event for perf) until Close. They are not
// safe for concurrent use: use one Reader per goroutine.
package msr
