package client_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/userside/client"
)

// FuzzClientRegion feeds hostile region images (seeded with a real one
// from the provider) to every read path of the client: whatever the bytes,
// it returns errors or n/a, never panics.
func FuzzClientRegion(f *testing.F) {
	p := startProvider(f)
	img, err := os.ReadFile(p.Path())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(img, uint16(0), byte(0))
	f.Add(img, uint16(4096+16), byte(0xff)) // first section's rows
	f.Add(img, uint16(300), byte(7))        // section table
	f.Fuzz(func(t *testing.T, b []byte, off uint16, v byte) {
		mem := make([]byte, len(b)) // heap memory: 8-byte aligned
		copy(mem, b)
		if int(off) < len(mem) {
			mem[off] ^= v
		}
		r, err := shm.FromBytes(mem)
		if err != nil {
			return
		}
		c := client.FromRegion(r)
		defer c.Close()
		c.Status()
		for cpu := -1; cpu <= c.NCPUs(); cpu++ {
			c.Counter(cpu, 12)
			c.MSR(cpu, 0)
		}
		s0, err0 := c.SamplePMU()
		procs, _ := c.Processes()
		if err0 == nil {
			c.Delta(s0, s0, procs, procs)
		}
		c.Query(context.Background(), client.QueryOptions{Metric: 6, Interval: time.Nanosecond, CPU: -1, Top: 3})
	})
}
