package bpfrt

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/shm"
)

// BenchmarkTracepointFilter is kushm's half of `make bench-lttng`: a user
// tracepoint whose event is the filter benchmark's 64 fields (version 2),
// recorded whole (512 bytes) into a region's trace ring when the filter
// passes, with the N-predicate chain as a BPF filter on the interpreter
// and on the JIT, and with no filter (every event recorded).
func BenchmarkTracepointFilter(b *testing.B) {
	r, err := shm.Create(filepath.Join(b.TempDir(), "app"), shm.Layout{NCPUs: 1, ProducerKind: abi.ProducerApp, ProducerName: "bench-lttng",
		HeartbeatPeriod: time.Hour, Sections: []shm.SectionSpec{TraceRingSpec(4096, 512)}}, shm.CreateOptions{GID: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	ring, err := OpenRing(r)
	if err != nil {
		b.Fatal(err)
	}
	tp, err := NewTypedTracepoint[filterEvent]("kushm_bench:ev", 1, ring)
	if err != nil {
		b.Fatal(err)
	}
	ctx := filterContext()
	ev := (*filterEvent)(unsafe.Pointer(&ctx[0]))
	b.Run("nofilter", func(b *testing.B) {
		tp.Attach(nil)
		for i := 0; i < b.N; i++ {
			tp.Fire(ev)
		}
	})
	engines := []Engine{EngineInterp}
	if amd64Supported {
		engines = append(engines, EngineJIT)
	}
	for _, e := range engines {
		for _, n := range []int{1, 10, 50} {
			for _, tb := range []bool{true, false} {
				p, err := LoadRaw(filterProgram(n, tb), nil, &Options{Engine: e})
				if err != nil {
					b.Fatal(err)
				}
				bias := map[bool]string{true: "true", false: "false"}[tb]
				b.Run(fmt.Sprintf("%s/N=%d/%s", e, n, bias), func(b *testing.B) {
					tp.Attach(p)
					want := tb
					if got := tp.Fire(ev); got != want {
						b.Fatalf("recorded %v, want %v", got, want)
					}
					for i := 0; i < b.N; i++ {
						tp.Fire(ev)
					}
				})
			}
		}
	}
}
