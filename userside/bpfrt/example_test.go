package bpfrt_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/userside/bpfrt"
)

// A raw program: r0 = *(u32 *)(r1 + 4) + 1.
func ExampleLoadRaw() {
	code := []byte{
		0x61, 0x10, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, // r0 = *(u32 *)(r1 + 4)
		0x07, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, // r0 += 1
		0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // exit
	}
	p, err := bpfrt.LoadRaw(code, nil, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	vm := p.NewVM()
	r0, err := vm.Run([]byte{0, 0, 0, 0, 41, 0, 0, 0})
	fmt.Println(r0, err)
	_, err = vm.Run([]byte{1, 2})
	fmt.Println(err)
	// Output:
	// 42 <nil>
	// run: instruction 0: memory access out of bounds: context access at offset 4, context is 2 bytes
}

// A refused program names the instruction and the reason.
func ExampleVerifierError() {
	code := []byte{
		0xbf, 0x30, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // r0 = r3 (never set)
		0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // exit
	}
	_, err := bpfrt.LoadRaw(code, nil, nil)
	fmt.Println(err)
	// Output:
	// invalid program: instruction 0 (mov op=0xbf dst=r0 src=r3 off=0 imm=0): r3 is read before it is initialised
}

// A clang-compiled object with maps, global data and a bpf-to-bpf call.
func ExampleLoadELF() {
	col, err := bpfrt.LoadELF("testdata/maps.o", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := make([]byte, 8)
	binary.LittleEndian.PutUint32(ctx[0:], 1) // key
	binary.LittleEndian.PutUint32(ctx[4:], 4) // n: adds (1+2+3+4) * scale(3)
	r0, err := col.Programs["count"].Run(ctx)
	fmt.Println(r0, err)
	// Output: 30 <nil>
}

// A user tracepoint with a BPF filter: only events with a latency above
// 1000 ns reach the region's trace ring, which `kushm trace` reads.
func ExampleNewTypedTracepoint() {
	type request struct {
		LatencyNs uint64
	}
	dir, _ := os.MkdirTemp("", "tp")
	defer os.RemoveAll(dir)
	region, err := shm.Create(filepath.Join(dir, "app"), shm.Layout{NCPUs: 1, ProducerKind: abi.ProducerApp,
		ProducerName: "example", HeartbeatPeriod: time.Second,
		Sections: []shm.SectionSpec{bpfrt.TraceRingSpec(1024, 8)}}, shm.CreateOptions{GID: -1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer region.Close()
	ring, _ := bpfrt.OpenRing(region)
	tp, _ := bpfrt.NewTypedTracepoint[request]("request", 1, ring)
	filter, _ := bpfrt.LoadRaw([]byte{
		0x79, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // r2 = *(u64 *)(r1 + 0)
		0xb7, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // r0 = 0
		0xa5, 0x02, 0x01, 0x00, 0xe8, 0x03, 0x00, 0x00, // if r2 < 1000 goto +1
		0xb7, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, // r0 = 1
		0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // exit
	}, nil, nil)
	tp.Attach(filter)
	for _, l := range []uint64{10, 5000, 20, 1200} {
		tp.Fire(&request{LatencyNs: l})
	}
	fmt.Println("recorded", ring.Head())
	// Output: recorded 2
}

// An application helper: programs call it by ID (or by name, as a kfunc).
// Its memory argument is bounds-checked before it runs.
func ExampleHelper() {
	checksum := bpfrt.Helper{
		Name: "app_checksum", ID: 1000,
		Args: []bpfrt.ArgKind{bpfrt.ArgMem, bpfrt.ArgSize},
		Fn: func(c *bpfrt.Call) (uint64, error) {
			var s uint64
			for _, b := range c.Mem(0) {
				s += uint64(b)
			}
			return s, nil
		},
	}
	p, err := bpfrt.LoadRaw([]byte{
		0x85, 0x00, 0x00, 0x00, 0xe8, 0x03, 0x00, 0x00, // call 1000 (r1 = ctx, r2 = its length)
		0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // exit
	}, nil, &bpfrt.Options{Helpers: []bpfrt.Helper{checksum}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Run([]byte{1, 2, 3, 4}))
	// Output: 10 <nil>
}
