package bpfrt

import (
	"errors"
	"fmt"
	"github.com/kushm/kushm/userside/bpfrt/internal/verifier"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"time"
)

// ArgKind is the type of one helper argument; the checker and the
// interpreter enforce it before the helper runs (internal/verifier's).
type ArgKind = verifier.ArgKind

// Argument kinds.
const (
	// ArgScalar is any initialised value.
	ArgScalar = verifier.ArgScalar
	// ArgMap is a map pointer (lddw of a map), proven at load time.
	ArgMap = verifier.ArgMap
	// ArgPtr is a pointer the helper checks itself with Call.Bytes.
	ArgPtr = verifier.ArgPtr
	// ArgMem is a pointer to memory the helper reads; the next argument,
	// ArgSize, is its length. Checked before the call (Call.Mem).
	ArgMem = verifier.ArgMem
	// ArgMemOut is like ArgMem, for memory the helper writes.
	ArgMemOut = verifier.ArgMemOut
	// ArgSize is the length of the preceding ArgMem or ArgMemOut.
	ArgSize = verifier.ArgSize
)

// Helper is a function programs call: a standard helper by ID (call imm),
// a kfunc by Name (extern ... __ksym in BPF C), or both.
type Helper struct {
	Name string
	ID   int32 // 0: callable by name (kfunc) only
	Args []ArgKind
	// Fn runs the helper. Its return value goes to r0; an error stops the
	// program with a RuntimeError wrapping ErrHelper. Fn must not keep
	// the Call or the memory it hands out after returning.
	Fn func(c *Call) (uint64, error)

	// inlineLookup marks the standard bpf_map_lookup_elem: the JIT may
	// inline it on array maps (a replacement never carries the mark).
	inlineLookup bool
}

// Call is what a helper sees of the calling program: its arguments and
// checked access to its memory. It is reused from call to call.
type Call struct {
	Args [5]uint64
	mem  [5][]byte
	vm   *VM
}

// Mem is the memory of argument i (0-based), checked against the size
// argument that follows it; nil for a zero size.
func (c *Call) Mem(i int) []byte { return c.mem[i] }

// Bytes returns the program memory [addr, addr+size), or an error wrapping
// ErrOutOfBounds when it is not inside memory the program may access.
func (c *Call) Bytes(addr, size uint64, write bool) ([]byte, error) {
	if size == 0 {
		return nil, nil
	}
	b := c.vm.bytes(addr, size, write)
	if b == nil {
		return nil, fmt.Errorf("%w: %d bytes at %#x", ErrOutOfBounds, size, addr)
	}
	return b, nil
}

// Map returns the map passed as argument i.
func (c *Call) Map(i int) (Map, error) {
	idx, ok := mapIndex(c.Args[i])
	if !ok || idx >= len(c.vm.p.maps) {
		return nil, fmt.Errorf("argument %d is not a map", i+1)
	}
	return c.vm.p.maps[idx], nil
}

// Address returns the program address of b, which must be memory the
// program may access (a map value, a Memory region): helpers that return
// pointers (map lookup) use it.
func (c *Call) Address(b []byte) uint64 {
	if len(b) == 0 {
		return 0
	}
	return addrOf(b)
}

const mapHandleBase = 0xffff_c000_0000_0000

func mapHandle(idx int) uint64 { return mapHandleBase + uint64(idx)<<4 }

func mapIndex(v uint64) (int, bool) {
	if v < mapHandleBase || v&15 != 0 || v-mapHandleBase >= 1<<32 {
		return 0, false
	}
	return int((v - mapHandleBase) >> 4), true
}

func (vm *VM) callHelper(idx int, r *[16]uint64) error {
	h := vm.p.helpers[idx]
	c := &vm.call
	c.Args = [5]uint64{r[1], r[2], r[3], r[4], r[5]}
	for i, a := range h.Args {
		if a != ArgMem && a != ArgMemOut {
			continue
		}
		size := uint64(0)
		if i+1 < len(h.Args) {
			size = c.Args[i+1]
		}
		if size == 0 {
			c.mem[i] = nil
			continue
		}
		b := vm.bytes(c.Args[i], size, a == ArgMemOut)
		if b == nil {
			return fmt.Errorf("%s: argument %d: %w: %d bytes at %#x", h.Name, i+1, ErrOutOfBounds, size, c.Args[i])
		}
		c.mem[i] = b
	}
	v, err := h.Fn(c)
	if err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	r[0] = v
	return nil
}

// Standard helper IDs (the kernel's numbers).
const (
	HelperMapLookupElem     = 1
	HelperMapUpdateElem     = 2
	HelperMapDeleteElem     = 3
	HelperKtimeGetNs        = 5
	HelperTracePrintk       = 6
	HelperGetPrandomU32     = 7
	HelperGetSmpProcessorID = 8
	HelperGetCurrentPidTgid = 14
)

var monoStart = time.Now()

// monoNs is CLOCK_MONOTONIC in ns without a system call.
func monoNs() uint64 { return monoBase + uint64(time.Since(monoStart)) }

func errno(e int) uint64 { return uint64(int64(-e)) }

// errno values returned to programs.
const (
	eNOENT   = 2
	eAGAIN   = 11
	eE2BIG   = 7
	eEXIST   = 17
	eINVAL   = 22
	eNODATA  = 61
	eNOSPC   = 28
	eNOTSUPP = 524
	eUCLEAN  = 117
)

func stdHelpers(opts *Options) []Helper {
	out := opts.TraceOutput
	if out == nil {
		out = io.Discard
	}
	pid := uint64(os.Getpid())
	return []Helper{
		{Name: "bpf_map_lookup_elem", ID: HelperMapLookupElem, Args: []ArgKind{ArgMap, ArgPtr}, inlineLookup: true, Fn: func(c *Call) (uint64, error) {
			m, err := c.Map(0)
			if err != nil {
				return 0, err
			}
			key, err := c.Bytes(c.Args[1], uint64(m.KeySize()), false)
			if err != nil {
				return 0, err
			}
			return c.Address(m.Lookup(key)), nil
		}},
		{Name: "bpf_map_update_elem", ID: HelperMapUpdateElem, Args: []ArgKind{ArgMap, ArgPtr, ArgPtr, ArgScalar}, Fn: func(c *Call) (uint64, error) {
			m, err := c.Map(0)
			if err != nil {
				return 0, err
			}
			key, err := c.Bytes(c.Args[1], uint64(m.KeySize()), false)
			if err != nil {
				return 0, err
			}
			val, err := c.Bytes(c.Args[2], uint64(m.ValueSize()), false)
			if err != nil {
				return 0, err
			}
			return mapErrno(m.Update(key, val, c.Args[3])), nil
		}},
		{Name: "bpf_map_delete_elem", ID: HelperMapDeleteElem, Args: []ArgKind{ArgMap, ArgPtr}, Fn: func(c *Call) (uint64, error) {
			m, err := c.Map(0)
			if err != nil {
				return 0, err
			}
			key, err := c.Bytes(c.Args[1], uint64(m.KeySize()), false)
			if err != nil {
				return 0, err
			}
			return mapErrno(m.Delete(key)), nil
		}},
		{Name: "bpf_ktime_get_ns", ID: HelperKtimeGetNs, Fn: func(*Call) (uint64, error) { return monoNs(), nil }},
		{Name: "bpf_trace_printk", ID: HelperTracePrintk, Args: []ArgKind{ArgMem, ArgSize}, Fn: func(c *Call) (uint64, error) {
			s := formatPrintk(c.Mem(0), c.Args[2:5])
			n, _ := io.WriteString(out, s)
			return uint64(n), nil
		}},
		{Name: "bpf_get_prandom_u32", ID: HelperGetPrandomU32, Fn: func(*Call) (uint64, error) { return uint64(rand.Uint32()), nil }},
		{Name: "bpf_get_smp_processor_id", ID: HelperGetSmpProcessorID, Fn: func(*Call) (uint64, error) { return uint64(currentCPUCheap()), nil }},
		{Name: "bpf_get_current_pid_tgid", ID: HelperGetCurrentPidTgid, Fn: func(*Call) (uint64, error) {
			return pid<<32 | uint64(gettid()), nil
		}},
	}
}

func mapErrno(err error) uint64 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrKeyNotExist):
		return errno(eNOENT)
	case errors.Is(err, ErrKeyExist):
		return errno(eEXIST)
	case errors.Is(err, ErrMapFull):
		return errno(eNOSPC)
	}
	return errno(eINVAL)
}

// buildHelpers returns the helper table: standard ones, the kushm kfuncs,
// then the application's, later entries replacing earlier ones.
func buildHelpers(opts *Options) []*Helper {
	all := append(stdHelpers(opts), ringbufHelpers()...)
	if opts.Kushm != nil {
		all = append(all, KushmHelpers(opts.Kushm)...)
	}
	all = append(all, opts.Helpers...)
	var out []*Helper
	for i := range all {
		h := &all[i]
		replaced := false
		for j, o := range out {
			if (h.ID != 0 && o.ID == h.ID) || (h.Name != "" && o.Name == h.Name) {
				out[j] = h
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, h)
		}
	}
	return out
}

// formatPrintk implements the subset of printf bpf_trace_printk offers:
// %d %i %u %x %ld %li %lu %lx %lld %lli %llu %llx %p %%, at most three
// arguments. The format is NUL-terminated or as long as its size.
func formatPrintk(fmtb []byte, args []uint64) string {
	if i := strings.IndexByte(string(fmtb), 0); i >= 0 {
		fmtb = fmtb[:i]
	}
	f := string(fmtb)
	var b strings.Builder
	ai := 0
	for i := 0; i < len(f); i++ {
		ch := f[i]
		if ch != '%' || i+1 >= len(f) {
			b.WriteByte(ch)
			continue
		}
		j := i + 1
		long := 0
		for j < len(f) && f[j] == 'l' && long < 2 {
			long++
			j++
		}
		if j >= len(f) {
			b.WriteString(f[i:])
			break
		}
		verb := f[j]
		if verb == '%' {
			b.WriteByte('%')
			i = j
			continue
		}
		var a uint64
		if ai < len(args) {
			a = args[ai]
		}
		switch verb {
		case 'd', 'i':
			if long == 0 {
				fmt.Fprintf(&b, "%d", int32(a))
			} else {
				fmt.Fprintf(&b, "%d", int64(a))
			}
		case 'u':
			if long == 0 {
				fmt.Fprintf(&b, "%d", uint32(a))
			} else {
				fmt.Fprintf(&b, "%d", a)
			}
		case 'x':
			if long == 0 {
				fmt.Fprintf(&b, "%x", uint32(a))
			} else {
				fmt.Fprintf(&b, "%x", a)
			}
		case 'p':
			fmt.Fprintf(&b, "0x%x", a)
		default:
			b.WriteString(f[i : j+1])
			i = j
			continue
		}
		ai++
		i = j
	}
	return b.String()
}
