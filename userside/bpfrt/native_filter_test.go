// Code generated for filter-bench version 2 (../shared/bench/filter-bench.md):
// the comparisons are written out, one field and one constant per predicate.

package bpfrt

// filterEvent is the filter benchmark's context: 64 u64 fields.
type filterEvent struct {
	F0, F1, F2, F3, F4, F5, F6, F7         uint64
	F8, F9, F10, F11, F12, F13, F14, F15   uint64
	F16, F17, F18, F19, F20, F21, F22, F23 uint64
	F24, F25, F26, F27, F28, F29, F30, F31 uint64
	F32, F33, F34, F35, F36, F37, F38, F39 uint64
	F40, F41, F42, F43, F44, F45, F46, F47 uint64
	F48, F49, F50, F51, F52, F53, F54, F55 uint64
	F56, F57, F58, F59, F60, F61, F62, F63 uint64
}

func nativeFilter1True(e *filterEvent) uint64 {
	if e.F0 < 0 {
		return 0
	}
	return 1
}

func nativeFilter1False(e *filterEvent) uint64 {
	if e.F0 > 0 {
		return 0
	}
	return 1
}

func nativeFilter10True(e *filterEvent) uint64 {
	if e.F0 < 0 {
		return 0
	}
	if e.F1 < 1 {
		return 0
	}
	if e.F2 < 2 {
		return 0
	}
	if e.F3 < 3 {
		return 0
	}
	if e.F4 < 4 {
		return 0
	}
	if e.F5 < 5 {
		return 0
	}
	if e.F6 < 6 {
		return 0
	}
	if e.F7 < 7 {
		return 0
	}
	if e.F8 < 8 {
		return 0
	}
	if e.F9 < 9 {
		return 0
	}
	return 1
}

func nativeFilter10False(e *filterEvent) uint64 {
	if e.F0 > 0 {
		return 0
	}
	if e.F1 < 1 {
		return 0
	}
	if e.F2 < 2 {
		return 0
	}
	if e.F3 < 3 {
		return 0
	}
	if e.F4 < 4 {
		return 0
	}
	if e.F5 < 5 {
		return 0
	}
	if e.F6 < 6 {
		return 0
	}
	if e.F7 < 7 {
		return 0
	}
	if e.F8 < 8 {
		return 0
	}
	if e.F9 < 9 {
		return 0
	}
	return 1
}

func nativeFilter50True(e *filterEvent) uint64 {
	if e.F0 < 0 {
		return 0
	}
	if e.F1 < 1 {
		return 0
	}
	if e.F2 < 2 {
		return 0
	}
	if e.F3 < 3 {
		return 0
	}
	if e.F4 < 4 {
		return 0
	}
	if e.F5 < 5 {
		return 0
	}
	if e.F6 < 6 {
		return 0
	}
	if e.F7 < 7 {
		return 0
	}
	if e.F8 < 8 {
		return 0
	}
	if e.F9 < 9 {
		return 0
	}
	if e.F10 < 10 {
		return 0
	}
	if e.F11 < 11 {
		return 0
	}
	if e.F12 < 12 {
		return 0
	}
	if e.F13 < 13 {
		return 0
	}
	if e.F14 < 14 {
		return 0
	}
	if e.F15 < 15 {
		return 0
	}
	if e.F16 < 16 {
		return 0
	}
	if e.F17 < 17 {
		return 0
	}
	if e.F18 < 18 {
		return 0
	}
	if e.F19 < 19 {
		return 0
	}
	if e.F20 < 20 {
		return 0
	}
	if e.F21 < 21 {
		return 0
	}
	if e.F22 < 22 {
		return 0
	}
	if e.F23 < 23 {
		return 0
	}
	if e.F24 < 24 {
		return 0
	}
	if e.F25 < 25 {
		return 0
	}
	if e.F26 < 26 {
		return 0
	}
	if e.F27 < 27 {
		return 0
	}
	if e.F28 < 28 {
		return 0
	}
	if e.F29 < 29 {
		return 0
	}
	if e.F30 < 30 {
		return 0
	}
	if e.F31 < 31 {
		return 0
	}
	if e.F32 < 32 {
		return 0
	}
	if e.F33 < 33 {
		return 0
	}
	if e.F34 < 34 {
		return 0
	}
	if e.F35 < 35 {
		return 0
	}
	if e.F36 < 36 {
		return 0
	}
	if e.F37 < 37 {
		return 0
	}
	if e.F38 < 38 {
		return 0
	}
	if e.F39 < 39 {
		return 0
	}
	if e.F40 < 40 {
		return 0
	}
	if e.F41 < 41 {
		return 0
	}
	if e.F42 < 42 {
		return 0
	}
	if e.F43 < 43 {
		return 0
	}
	if e.F44 < 44 {
		return 0
	}
	if e.F45 < 45 {
		return 0
	}
	if e.F46 < 46 {
		return 0
	}
	if e.F47 < 47 {
		return 0
	}
	if e.F48 < 48 {
		return 0
	}
	if e.F49 < 49 {
		return 0
	}
	return 1
}

func nativeFilter50False(e *filterEvent) uint64 {
	if e.F0 > 0 {
		return 0
	}
	if e.F1 < 1 {
		return 0
	}
	if e.F2 < 2 {
		return 0
	}
	if e.F3 < 3 {
		return 0
	}
	if e.F4 < 4 {
		return 0
	}
	if e.F5 < 5 {
		return 0
	}
	if e.F6 < 6 {
		return 0
	}
	if e.F7 < 7 {
		return 0
	}
	if e.F8 < 8 {
		return 0
	}
	if e.F9 < 9 {
		return 0
	}
	if e.F10 < 10 {
		return 0
	}
	if e.F11 < 11 {
		return 0
	}
	if e.F12 < 12 {
		return 0
	}
	if e.F13 < 13 {
		return 0
	}
	if e.F14 < 14 {
		return 0
	}
	if e.F15 < 15 {
		return 0
	}
	if e.F16 < 16 {
		return 0
	}
	if e.F17 < 17 {
		return 0
	}
	if e.F18 < 18 {
		return 0
	}
	if e.F19 < 19 {
		return 0
	}
	if e.F20 < 20 {
		return 0
	}
	if e.F21 < 21 {
		return 0
	}
	if e.F22 < 22 {
		return 0
	}
	if e.F23 < 23 {
		return 0
	}
	if e.F24 < 24 {
		return 0
	}
	if e.F25 < 25 {
		return 0
	}
	if e.F26 < 26 {
		return 0
	}
	if e.F27 < 27 {
		return 0
	}
	if e.F28 < 28 {
		return 0
	}
	if e.F29 < 29 {
		return 0
	}
	if e.F30 < 30 {
		return 0
	}
	if e.F31 < 31 {
		return 0
	}
	if e.F32 < 32 {
		return 0
	}
	if e.F33 < 33 {
		return 0
	}
	if e.F34 < 34 {
		return 0
	}
	if e.F35 < 35 {
		return 0
	}
	if e.F36 < 36 {
		return 0
	}
	if e.F37 < 37 {
		return 0
	}
	if e.F38 < 38 {
		return 0
	}
	if e.F39 < 39 {
		return 0
	}
	if e.F40 < 40 {
		return 0
	}
	if e.F41 < 41 {
		return 0
	}
	if e.F42 < 42 {
		return 0
	}
	if e.F43 < 43 {
		return 0
	}
	if e.F44 < 44 {
		return 0
	}
	if e.F45 < 45 {
		return 0
	}
	if e.F46 < 46 {
		return 0
	}
	if e.F47 < 47 {
		return 0
	}
	if e.F48 < 48 {
		return 0
	}
	if e.F49 < 49 {
		return 0
	}
	return 1
}

var nativeFilters = map[string]func(*filterEvent) uint64{
	"1/true":   nativeFilter1True,
	"1/false":  nativeFilter1False,
	"10/true":  nativeFilter10True,
	"10/false": nativeFilter10False,
	"50/true":  nativeFilter50True,
	"50/false": nativeFilter50False,
}
