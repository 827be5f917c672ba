package bpfrt

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/shm"
)

type reqEvent struct {
	LatencyNs uint64
	Status    uint32
	Pad       uint32
}

// latencyFilter keeps events slower than 1000 ns or with status >= 500.
var latencyFilter = assemble(
	asmInsn{op: clsLDX | modeMEM | szDW, dst: 2, src: 1, off: 0},
	asmInsn{op: clsJMP | jmpJGT, dst: 2, imm: 1000, off: 4},
	asmInsn{op: clsLDX | modeMEM | szW, dst: 2, src: 1, off: 8},
	asmInsn{op: clsJMP32 | jmpJGE, dst: 2, imm: 500, off: 2},
	movImm(0, 0), exit,
	movImm(0, 1), exit,
)

func traceRegion(t testing.TB) (string, *Ring) {
	path := filepath.Join(t.TempDir(), "app")
	r, err := shm.Create(path, shm.Layout{NCPUs: 1, ProducerKind: abi.ProducerApp, ProducerName: "bpfrt-test",
		HeartbeatPeriod: time.Hour, Sections: []shm.SectionSpec{TraceRingSpec(64, 16)}}, shm.CreateOptions{GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	ring, err := OpenRing(r)
	if err != nil {
		t.Fatal(err)
	}
	return path, ring
}

func TestTracepointFilter(t *testing.T) {
	path, ring := traceRegion(t)
	tp, err := NewTypedTracepoint[reqEvent]("http_request", 7, ring)
	if err != nil {
		t.Fatal(err)
	}
	p, err := LoadRaw(latencyFilter, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tp.Attach(p)
	evs := []reqEvent{{LatencyNs: 10, Status: 200}, {LatencyNs: 5000, Status: 200}, {LatencyNs: 10, Status: 503}, {LatencyNs: 999, Status: 404}}
	var wg sync.WaitGroup
	for i := range evs {
		wg.Add(1)
		go func() { defer wg.Done(); tp.Fire(&evs[i]) }()
	}
	wg.Wait()
	r, err := shm.Open(path, shm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rd, err := OpenRing(r)
	if err != nil {
		t.Fatal(err)
	}
	if rd.Head() != 2 {
		t.Fatalf("%d events recorded, want 2", rd.Head())
	}
	got := map[uint64]bool{}
	for n := uint64(0); n < rd.Head(); n++ {
		rec, ok := rd.Read(n)
		if !ok || rec.Type != 7 || len(rec.Payload) != 16 {
			t.Fatalf("record %d: %+v %v", n, rec, ok)
		}
		got[uint64(rec.Payload[0])|uint64(rec.Payload[1])<<8] = true
	}
	if !got[5000] || !got[10] {
		t.Fatalf("recorded %v", got)
	}
	if _, err := NewTypedTracepoint[struct{ P *int }]("bad", 1, ring); err == nil {
		t.Fatal("pointer context accepted")
	}
	tp.Disable()
	if tp.Fire(&evs[1]) {
		t.Fatal("disabled tracepoint recorded")
	}
}

// BenchmarkTracepoint: an event the filter drops, and one it records.
func BenchmarkTracepoint(b *testing.B) {
	_, ring := traceRegion(b)
	tp, err := NewTypedTracepoint[reqEvent]("http_request", 7, ring)
	if err != nil {
		b.Fatal(err)
	}
	p, err := LoadRaw(latencyFilter, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	tp.Attach(p)
	for _, c := range []struct {
		name string
		ev   reqEvent
	}{{"dropped", reqEvent{LatencyNs: 10, Status: 200}}, {"recorded", reqEvent{LatencyNs: 5000}}} {
		b.Run(c.name, func(b *testing.B) {
			ev := c.ev
			for i := 0; i < b.N; i++ {
				tp.Fire(&ev)
			}
		})
	}
}
