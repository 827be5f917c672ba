package bpfrt

import (
	"encoding/binary"
	"errors"

	"github.com/kushm/kushm/internal/errs"
)

// Errors a Kushm implementation returns; the kfuncs turn them into the
// negative errno values of docs/helpers.md.
var (
	ErrInvalid   = errs.ErrInvalid                                    // -EINVAL
	ErrNoData    = errs.Refine(errs.ErrNotAvailable, "not available") // -ENODATA
	ErrNotFound  = errors.New("no such entry")                        // -ENOENT
	ErrShortBuf  = errors.New("buffer too small")                     // -E2BIG
	ErrRetry     = errors.New("retry budget exhausted")               // -EAGAIN
	ErrTableFull = errors.New("table full")                           // -ENOSPC
	ErrCorrupt   = errors.New("table corrupt")                        // -EUCLEAN
)

// Kushm is the shared region as the kushm kfuncs see it. The kernel module
// implements the same four functions over the same region; one BPF C
// source runs on both.
type Kushm interface {
	// ReadCounter returns preset's counter on cpu.
	ReadCounter(cpu, preset uint32) (uint64, error)
	// TableLookup copies the value of key in table (per-CPU slots summed)
	// into buf and returns the bytes copied.
	TableLookup(table uint32, key uint64, buf []byte) (int, error)
	// SyscallThreshold is the outlier threshold of syscall nr in ns, 0
	// while unknown.
	SyscallThreshold(nr uint32) uint64
	// RecordLatency adds a latency sample; it reports whether it is an outlier.
	RecordLatency(nr uint32, latencyNs uint64) (bool, error)
}

func kushmErrno(err error) uint64 {
	switch {
	case errors.Is(err, ErrNoData):
		return errno(eNODATA)
	case errors.Is(err, ErrNotFound):
		return errno(eNOENT)
	case errors.Is(err, ErrShortBuf):
		return errno(eE2BIG)
	case errors.Is(err, ErrRetry):
		return errno(eAGAIN)
	case errors.Is(err, ErrTableFull):
		return errno(eNOSPC)
	case errors.Is(err, ErrCorrupt):
		return errno(eUCLEAN)
	}
	return errno(eINVAL)
}

// KushmHelpers returns the bpf_kushm_* kfuncs over k.
func KushmHelpers(k Kushm) []Helper {
	return []Helper{
		{Name: "bpf_kushm_read_counter", Args: []ArgKind{ArgScalar, ArgScalar, ArgPtr}, Fn: func(c *Call) (uint64, error) {
			out, err := c.Bytes(c.Args[2], 8, true)
			if err != nil {
				return 0, err
			}
			v, err := k.ReadCounter(uint32(c.Args[0]), uint32(c.Args[1]))
			if err != nil {
				binary.LittleEndian.PutUint64(out, 0) // *value is 0 on any error
				return kushmErrno(err), nil
			}
			binary.LittleEndian.PutUint64(out, v)
			return 0, nil
		}},
		{Name: "bpf_kushm_table_lookup", Args: []ArgKind{ArgScalar, ArgScalar, ArgMemOut, ArgSize}, Fn: func(c *Call) (uint64, error) {
			n, err := k.TableLookup(uint32(c.Args[0]), c.Args[1], c.Mem(2))
			if err != nil {
				return kushmErrno(err), nil
			}
			return uint64(n), nil
		}},
		{Name: "bpf_kushm_syscall_threshold", Args: []ArgKind{ArgScalar}, Fn: func(c *Call) (uint64, error) {
			return k.SyscallThreshold(uint32(c.Args[0])), nil
		}},
		{Name: "bpf_kushm_record_latency", Args: []ArgKind{ArgScalar, ArgScalar}, Fn: func(c *Call) (uint64, error) {
			out, err := k.RecordLatency(uint32(c.Args[0]), c.Args[1])
			if err != nil {
				return kushmErrno(err), nil
			}
			if out {
				return 1, nil
			}
			return 0, nil
		}},
	}
}
