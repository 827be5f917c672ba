package shm

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/kushm/kushm/internal/abi"
)

// DumpOptions control Dump.
type DumpOptions struct {
	// MaxEntries bounds the hash entries and ring records listed per
	// section (default 64).
	MaxEntries int
}

// Dump writes a human-readable listing of every section of r, decoding
// elements through the schema's columns only: it has no code written for
// any particular section, which is what the self-describing format
// promises. It reads with the same seq validation as the typed views but
// is implemented on raw bytes so it never needs the structure packages.
func Dump(r *Region, w io.Writer, o DumpOptions) error {
	if o.MaxEntries <= 0 {
		o.MaxEntries = 64
	}
	h := r.Header()
	live := r.Liveness()
	fmt.Fprintf(w, "region %s: ABI %d.%d, %d bytes, page %d, %d CPUs\n", r.path, h.ABIMajor, h.ABIMinor, h.RegionSize, h.PageSize, h.NCPUs)
	fmt.Fprintf(w, "producer: %s (%s, pid %d, generation %d), created %s, heartbeat %v ago",
		h.ProducerName, ProducerKindName(h.ProducerKind), h.ProducerPID, h.Generation,
		time.Unix(0, int64(h.CreatedRealNs)).UTC().Format(time.RFC3339), live.Age.Round(time.Millisecond))
	if live.Stale {
		fmt.Fprintf(w, " (STALE: %s)", live.Reason)
	}
	fmt.Fprintln(w)
	for i := range r.sections {
		s := &r.sections[i]
		fmt.Fprintf(w, "\nsection %q: %s, offset %#x, %d bytes, %d x %d", s.Name, KindName(s.Kind), s.Offset, s.Size, s.Count, s.ElemSize)
		if s.Flags&abi.SecFlagUserWritable != 0 {
			fmt.Fprint(w, ", user-writable")
		}
		if s.External() {
			fmt.Fprint(w, ", in .ctl file")
		}
		fmt.Fprintln(w)
		b, err := r.Bytes(s)
		if err != nil {
			fmt.Fprintf(w, "  (not available: %v)\n", err)
			continue
		}
		switch s.Kind {
		case abi.SecAtomicArr:
			dumpRows(w, s, b)
		case abi.SecRCUHash:
			dumpHash(w, s, b, o.MaxEntries)
		case abi.SecText:
			txt := b
			if i := indexByte(txt, 0); i >= 0 {
				txt = txt[:i]
			}
			for _, line := range strings.Split(strings.TrimRight(string(txt), "\n"), "\n") {
				fmt.Fprintf(w, "  %s\n", sanitize(line))
			}
		case abi.SecControl:
			if len(b) >= abi.ControlHeadSize {
				fmt.Fprintf(w, "  interval_us=%d kx100=%d warmup=%d rejected=%d\n",
					le.Uint32(b[8:]), le.Uint32(b[12:]), le.Uint32(b[16:]), le.Uint64(b[24:]))
				n := 0
				for nr := 0; nr < abi.NumSyscallOverrides && abi.ControlHeadSize+8*nr+8 <= len(b); nr++ {
					if v := le.Uint64(b[abi.ControlHeadSize+8*nr:]); v != 0 && n < o.MaxEntries {
						fmt.Fprintf(w, "  override syscall %d: %d ns\n", nr, v)
						n++
					}
				}
			}
		case abi.SecSchema:
			fmt.Fprintf(w, "  %d columns\n", s.Count)
		}
	}
	return nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// ProducerKindName names a producer kind.
func ProducerKindName(k uint32) string {
	switch k {
	case abi.ProducerKernel:
		return "kernel module"
	case abi.ProducerDaemon:
		return "userspace daemon"
	case abi.ProducerApp:
		return "application"
	}
	return fmt.Sprintf("kind %d", k)
}

func atomicU64(b []byte, off uint64) uint64 {
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&b[off])))
}

func atomicU32(b []byte, off uint64) uint32 {
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&b[off])))
}

func field(c Column, elem []byte) string {
	end := uint64(c.Offset) + uint64(c.Size)
	if end > uint64(len(elem)) {
		return "?"
	}
	f := elem[c.Offset:end]
	switch {
	case c.Type == abi.ColU64 && c.Size == 8:
		return fmt.Sprint(binary.LittleEndian.Uint64(f))
	case c.Type == abi.ColS64 && c.Size == 8:
		return fmt.Sprint(int64(binary.LittleEndian.Uint64(f)))
	case c.Type == abi.ColU32 && c.Size == 4:
		return fmt.Sprint(binary.LittleEndian.Uint32(f))
	case c.Type == abi.ColChars:
		if i := indexByte(f, 0); i >= 0 {
			f = f[:i]
		}
		return fmt.Sprintf("%q", sanitize(string(f)))
	}
	return "?"
}

// snapshotRow copies one atomicarr row under its seqcount.
func snapshotRow(b []byte, off, stride uint64) ([]byte, bool) {
	row := make([]byte, stride)
	for try := 0; try < abi.MaxRetries; try++ {
		s1 := atomicU64(b, off)
		if s1&1 != 0 {
			continue
		}
		for w := uint64(8); w < stride; w += 8 {
			binary.LittleEndian.PutUint64(row[w:], atomicU64(b, off+w))
		}
		if atomicU64(b, off) == s1 {
			return row, true
		}
	}
	return nil, false
}

func dumpRows(w io.Writer, s *Section, b []byte) {
	if s.ElemSize < abi.RowSlotsOff || s.ElemSize%8 != 0 || uint64(s.ElemSize)*uint64(s.Count) > uint64(len(b)) {
		fmt.Fprintln(w, "  (bad geometry)")
		return
	}
	for r := uint64(0); r < uint64(s.Count); r++ {
		row, ok := snapshotRow(b, r*uint64(s.ElemSize), uint64(s.ElemSize))
		if !ok {
			fmt.Fprintf(w, "  row %d: (being written, retry)\n", r)
			continue
		}
		valid := binary.LittleEndian.Uint64(row[16:])
		var parts []string
		for _, c := range s.Columns {
			v := "n/a"
			if c.Offset >= abi.RowSlotsOff {
				slot := (c.Offset - abi.RowSlotsOff) / 8
				if slot < 64 && valid&(1<<slot) != 0 {
					v = field(c, row)
				}
			}
			parts = append(parts, fmt.Sprintf("%s=%s", c.Name, v))
		}
		fmt.Fprintf(w, "  cpu %d: %s\n", r, strings.Join(parts, " "))
	}
}

func dumpHash(w io.Writer, s *Section, b []byte, max int) {
	if len(b) < abi.HashHeaderSize {
		fmt.Fprintln(w, "  (bad geometry)")
		return
	}
	g := func(off int) uint64 { return uint64(binary.LittleEndian.Uint32(b[off:])) }
	capacity, nodeSize, nslots, vsize := g(8), g(12), g(16), g(20)
	slotsOff, stride, dataSize, nodesOff := g(24), g(28), g(36), g(44)
	if nodeSize == 0 || nodeSize%8 != 0 || vsize%8 != 0 || stride%8 != 0 || slotsOff%8 != 0 ||
		abi.RCUNodeSize+dataSize > slotsOff || slotsOff+nslots*(stride) > nodeSize || vsize+8 > stride ||
		nodesOff%8 != 0 || nodesOff+capacity*nodeSize > uint64(len(b)) || capacity > abi.MaxHashCapacity {
		fmt.Fprintln(w, "  (bad geometry)")
		return
	}
	fmt.Fprintf(w, "  %d live of %d, %d inserts refused (full)\n", atomicU64(b, 48), capacity, atomicU64(b, 72))
	shown := 0
	for i := uint64(0); i < capacity && shown < max; i++ {
		n := nodesOff + i*nodeSize
		for try := 0; try < abi.MaxRetries; try++ {
			s1 := atomicU32(b, n)
			if s1&1 != 0 {
				break
			}
			node := make([]byte, nodeSize)
			for off := uint64(8); off < nodeSize; off += 8 {
				binary.LittleEndian.PutUint64(node[off:], atomicU64(b, n+off))
			}
			if atomicU32(b, n) != s1 {
				continue
			}
			var parts []string
			data := node[abi.RCUNodeSize : abi.RCUNodeSize+dataSize]
			// Value: word-wise sum of slots (counters).
			val := make([]byte, vsize)
			for j := uint64(0); j < nslots; j++ {
				sv := node[slotsOff+j*stride+8:][:vsize]
				for w := uint64(0); w+8 <= vsize; w += 8 {
					binary.LittleEndian.PutUint64(val[w:], binary.LittleEndian.Uint64(val[w:])+binary.LittleEndian.Uint64(sv[w:]))
				}
			}
			// A valid-mask column says which value columns hold readings.
			mask, hasMask := ^uint64(0), false
			for _, c := range s.Columns {
				if c.Kind == abi.ColValidMask && c.Size == 8 && uint64(c.Offset)+8 <= uint64(len(data)) {
					mask, hasMask = binary.LittleEndian.Uint64(data[c.Offset:]), true
				}
			}
			for _, c := range s.Columns {
				switch c.Kind {
				case abi.ColKey:
					parts = append(parts, fmt.Sprintf("%s=%d", c.Name, binary.LittleEndian.Uint64(node[8:])))
				case abi.ColLabel:
					parts = append(parts, fmt.Sprintf("%s=%s", c.Name, field(c, data)))
				case abi.ColValidMask:
				default:
					if hasMask && (c.ID >= 64 || mask&(1<<c.ID) == 0) {
						parts = append(parts, c.Name+"=n/a")
						continue
					}
					parts = append(parts, fmt.Sprintf("%s=%s", c.Name, field(c, val)))
				}
			}
			if len(s.Columns) == 0 {
				parts = append(parts, fmt.Sprintf("key=%d", binary.LittleEndian.Uint64(node[8:])))
			}
			fmt.Fprintf(w, "  %s\n", strings.Join(parts, " "))
			shown++
			break
		}
	}
}
