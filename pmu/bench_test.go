//go:build linux

package pmu

import (
	"errors"
	"testing"
)

// The provider reads every CPU's Reader every 10 ms .. 1 s: one read(2)
// per event, or one per group, and no allocation.
func BenchmarkReaderRead(b *testing.B) {
	ids := []PresetID{SW_TASK_CLOCK, SW_PAGE_FAULTS, SW_CONTEXT_SWITCHES, SW_CPU_MIGRATIONS}
	for _, c := range []struct {
		name  string
		group bool
		pin   bool
	}{{"independent4", false, false}, {"group4", true, false}, {"independent4-pinned", false, true}, {"group4-pinned", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			if c.pin {
				unpin, err := PinToCPU(0)
				if err != nil {
					b.Skip(err)
				}
				defer unpin()
			}
			r, err := OpenCPU(0, ids, &Options{Group: c.group})
			if errors.Is(err, ErrPermission) {
				b.Skip(err)
			}
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			vals := make([]Value, len(ids))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := r.Read(vals); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkScale(b *testing.B) {
	var s uint64
	for i := 0; i < b.N; i++ {
		v, _ := Scale(uint64(i)*1000, 4000, 1000)
		s += v
	}
	_ = s
}
