package dump

import (
	"encoding/binary"
	"math"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/sysstat"
	"github.com/kushm/kushm/shm"
)

// ValueColumn reports whether c describes a field of an entry's value (as
// opposed to its key or node data), the columns Merge combines.
func ValueColumn(c shm.Column) bool {
	return c.Kind != abi.ColKey && c.Kind != abi.ColLabel && c.Kind != abi.ColValidMask
}

// Merge combines the nslots value slots of one entry (slots: nslots
// values of vsize bytes back to back) into one value laid out like a
// slot, written to out (vsize bytes), by each value column's merge rule
// (docs/region-format.md §4.1). ok[i] reports whether column i of cols
// has a merged value: false for key and node-data columns, for a column
// the region says is not merged (MergeNone with several slots), and for
// a column that does not fit the value or whose type the rule does not
// apply to. It has no code for any particular section.
func Merge(cols []shm.Column, slots []byte, nslots, vsize int, out []byte) (ok []bool) {
	ok = make([]bool, len(cols))
	clear(out)
	if nslots <= 0 || vsize <= 0 || len(slots) < nslots*vsize || len(out) < vsize {
		return ok
	}
	slot := func(j int) []byte { return slots[j*vsize : (j+1)*vsize] }
	fits := func(c shm.Column) bool { return uint64(c.Offset)+uint64(c.Size) <= uint64(vsize) }
	u64 := func(c shm.Column, j int) uint64 { return binary.LittleEndian.Uint64(slot(j)[c.Offset:]) }

	// Each Welford group's count, sum and m2 columns.
	type group struct{ count, sum, m2 int }
	groups := map[uint8]*group{}
	for i, c := range cols {
		r, g := c.Merge&abi.MergeRuleMask, c.Merge>>abi.MergeGroupShift
		if !ValueColumn(c) || c.Type != abi.ColU64 || c.Size != 8 || !fits(c) ||
			r < abi.MergeWelfordCount || r > abi.MergeWelfordM2 {
			continue
		}
		if groups[g] == nil {
			groups[g] = &group{-1, -1, -1}
		}
		switch r {
		case abi.MergeWelfordCount:
			groups[g].count = i
		case abi.MergeWelfordSum:
			groups[g].sum = i
		case abi.MergeWelfordM2:
			groups[g].m2 = i
		}
	}
	// empty reports whether slot j holds no samples of group g: its
	// count column is 0. Without a count column no slot is empty.
	empty := func(g uint8, j int) bool {
		if gr := groups[g]; gr != nil && gr.count >= 0 {
			return u64(cols[gr.count], j) == 0
		}
		return false
	}

	for i, c := range cols {
		if !ValueColumn(c) || !fits(c) {
			continue
		}
		r, g := c.Merge&abi.MergeRuleMask, c.Merge>>abi.MergeGroupShift
		if r == abi.MergeUnspecified { // a 1.1 region
			r = abi.MergeNone
			if c.Kind == abi.ColCounter {
				r = abi.MergeSum
			}
		}
		dst := out[c.Offset : c.Offset+c.Size]
		if r == abi.MergeNone || c.Type == abi.ColChars {
			// Not merged: one slot's value when there is one slot;
			// chars only ever take the last non-empty slot's bytes.
			switch {
			case nslots == 1 && (r == abi.MergeNone || r == abi.MergeLast):
				copy(dst, slot(0)[c.Offset:])
				ok[i] = true
			case r == abi.MergeLast:
				for j := nslots - 1; j >= 0; j-- {
					if !empty(g, j) {
						copy(dst, slot(j)[c.Offset:])
						break
					}
				}
				ok[i] = true
			}
			continue
		}
		if c.Type == abi.ColU16 {
			// An array of u16 (a histogram): element by element, sum
			// only, saturating at 2^16-1.
			if r != abi.MergeSum || c.Size%2 != 0 {
				continue
			}
			for e := uint32(0); e+2 <= c.Size; e += 2 {
				var v uint64
				for j := 0; j < nslots; j++ {
					if !empty(g, j) {
						v += uint64(binary.LittleEndian.Uint16(slot(j)[c.Offset+e:]))
					}
				}
				binary.LittleEndian.PutUint16(dst[e:], uint16(min(v, 0xffff)))
			}
			ok[i] = true
			continue
		}
		var conv scalar
		switch {
		case c.Type == abi.ColU64 && c.Size == 8:
			conv = u64Scalar
		case c.Type == abi.ColS64 && c.Size == 8:
			conv = s64Scalar
		case c.Type == abi.ColU32 && c.Size == 4:
			conv = u32Scalar
		default:
			continue
		}
		if r >= abi.MergeWelfordCount && c.Type != abi.ColU64 {
			continue
		}
		var v uint64
		switch r {
		case abi.MergeSum, abi.MergeWelfordCount, abi.MergeWelfordSum,
			abi.MergeMin, abi.MergeMax, abi.MergeLast:
			first := true
			for j := 0; j < nslots; j++ {
				if empty(g, j) {
					continue
				}
				x := conv.load(slot(j)[c.Offset:])
				switch {
				case first:
					v = x
				case r == abi.MergeMin:
					v = conv.min(v, x)
				case r == abi.MergeMax:
					v = conv.max(v, x)
				case r == abi.MergeLast:
					v = x
				default:
					v = conv.add(v, x)
				}
				first = false
			}
		case abi.MergeWelfordMean, abi.MergeWelfordM2:
			gr := groups[g]
			if gr == nil || gr.count < 0 || gr.sum < 0 || (r == abi.MergeWelfordM2 && gr.m2 < 0) {
				continue // an incomplete group: no merged value
			}
			v = welford(r, func(j int) (n, s, m2 uint64) {
				n, s = u64(cols[gr.count], j), u64(cols[gr.sum], j)
				if gr.m2 >= 0 {
					m2 = u64(cols[gr.m2], j)
				}
				return
			}, nslots)
		default:
			continue // a rule this reader does not know (a newer minor)
		}
		conv.store(dst, v)
		ok[i] = true
	}
	return ok
}

// welford folds the non-empty slots of one Welford group in slot order,
// exactly as internal/sysstat.MergeInto does, and returns the merged
// mean (sum/count) or m2.
func welford(r uint8, at func(j int) (n, s, m2 uint64), nslots int) uint64 {
	var n, s, m2 uint64
	for j := 0; j < nslots; j++ {
		nb, sb, m2b := at(j)
		if nb == 0 {
			continue
		}
		if n == 0 {
			n, s, m2 = nb, sb, m2b
			continue
		}
		ma, mb := s/n, sb/nb
		d := ma - mb
		if mb > ma {
			d = mb - ma
		}
		nn := sysstat.SatAdd(n, nb)
		m2 = sysstat.SatAdd(sysstat.SatAdd(m2, m2b), sysstat.CrossTerm(d, n, nb, nn))
		n, s = nn, sysstat.SatAdd(s, sb)
	}
	if r == abi.MergeWelfordM2 {
		return m2
	}
	if n == 0 {
		return 0
	}
	return s / n
}

// scalar is the arithmetic of one column type, on values widened to u64.
type scalar struct {
	load          func([]byte) uint64
	store         func([]byte, uint64)
	add, min, max func(a, b uint64) uint64
}

var (
	u64Scalar = scalar{
		load: binary.LittleEndian.Uint64, store: binary.LittleEndian.PutUint64,
		add: sysstat.SatAdd, min: func(a, b uint64) uint64 { return min(a, b) }, max: func(a, b uint64) uint64 { return max(a, b) },
	}
	u32Scalar = scalar{
		load:  func(b []byte) uint64 { return uint64(binary.LittleEndian.Uint32(b)) },
		store: func(b []byte, v uint64) { binary.LittleEndian.PutUint32(b, uint32(v)) },
		add:   func(a, b uint64) uint64 { return min(a+b, math.MaxUint32) },
		min:   func(a, b uint64) uint64 { return min(a, b) }, max: func(a, b uint64) uint64 { return max(a, b) },
	}
	s64Scalar = scalar{
		load: binary.LittleEndian.Uint64, store: binary.LittleEndian.PutUint64,
		add: func(a, b uint64) uint64 {
			x, y := int64(a), int64(b)
			switch s := x + y; {
			case x > 0 && y > 0 && s < 0:
				return math.MaxInt64
			case x < 0 && y < 0 && s >= 0:
				return 1 << 63 // math.MinInt64
			default:
				return uint64(s)
			}
		},
		min: func(a, b uint64) uint64 { return uint64(min(int64(a), int64(b))) },
		max: func(a, b uint64) uint64 { return uint64(max(int64(a), int64(b))) },
	}
)
