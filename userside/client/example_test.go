package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/userside/client"
)

// Open the region (the kernel module's, else the daemon's), read one
// counter with two loads from shared memory, and measure cache misses
// per CPU over a second. A counter this machine cannot count is "n/a",
// with the reason.
func Example() {
	c, err := client.Open(client.Options{}) // discovers /dev/kushm, debugfs, /dev/shm/kushm
	if err != nil {
		log.Fatal(err) // e.g. "no producer is running (start the daemon with 'kushm serve' ...)"
	}
	defer c.Close()

	if v, ok := c.Counter(0, pmu.SW_PAGE_FAULTS); ok {
		fmt.Println("page faults on CPU 0 so far:", v)
	}

	res, err := c.Query(context.Background(), client.QueryOptions{
		Metric: pmu.PAPI_L3_TCM, Interval: time.Second, CPU: -1, Top: 5,
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, row := range res.CPUs {
		if row.Rate == nil {
			fmt.Printf("cpu %d: n/a: %s\n", *row.CPU, row.Reason)
			continue
		}
		fmt.Printf("cpu %d: %.0f cache misses/s\n", *row.CPU, *row.Rate)
	}
}

// A process's own counters, from the procs table.
func ExampleClient_Process() {
	c, err := client.Open(client.Options{Path: "/dev/shm/kushm"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	p, err := c.Process(1234)
	if err != nil {
		log.Fatal(err) // wraps shm.ErrNotFound when the producer does not watch pid 1234
	}
	if p.Has(int(pmu.SW_PAGE_FAULTS)) {
		fmt.Println(p.Comm, "page faults:", p.Counters[pmu.SW_PAGE_FAULTS])
	}
}
