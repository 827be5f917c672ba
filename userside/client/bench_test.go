package client_test

import (
	"testing"

	"github.com/kushm/kushm/internal/sys/perfsys"
	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/userside/client"
)

var sink uint64

// BenchmarkCounterRead compares reading one per-CPU counter (page faults
// of CPU 0) from the region with reading it from its perf fd with
// read(2). Goal: region ≥ 50x faster (docs/benchmarks.md).
func BenchmarkCounterRead(b *testing.B) {
	p := startProvider(b)
	c, err := client.Open(client.Options{Path: p.Path()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.Counter(0, pmu.SW_PAGE_FAULTS); !ok {
		b.Skip("page faults not available on CPU 0")
	}
	b.Run("region", func(b *testing.B) {
		for b.Loop() {
			v, _ := c.Counter(0, pmu.SW_PAGE_FAULTS)
			sink += v
		}
	})
	b.Run("read2", func(b *testing.B) {
		fd, err := perfsys.Open(perfsys.Attr{Type: perfsys.TypeSoftware, Config: 2 /* PERF_COUNT_SW_PAGE_FAULTS */},
			perfsys.Target{PID: -1, CPU: 0, CgroupFD: -1}, -1, false)
		if err != nil {
			b.Skip("perf_event_open:", err)
		}
		defer perfsys.Close(fd)
		perfsys.Enable(fd, false)
		buf := make([]byte, 24)
		var cnt perfsys.Count
		for b.Loop() {
			if err := perfsys.ReadOne(fd, buf, &cnt); err != nil {
				b.Fatal(err)
			}
			sink += cnt.Value
		}
	})
	b.Run("read2-pmu", func(b *testing.B) {
		r, err := pmu.OpenCPU(0, []pmu.PresetID{pmu.SW_PAGE_FAULTS}, nil)
		if err != nil || r.Err(0) != nil {
			b.Skip("pmu reader:", err)
		}
		defer r.Close()
		v := make([]pmu.Value, 1)
		for b.Loop() {
			r.Read(v)
			sink += v[0].Scaled
		}
	})
}
