package atomicarr_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/shm"
)

// A producer publishes one sample per CPU row; a reader takes consistent
// snapshots and computes rates between them.
func Example() {
	dir, _ := os.MkdirTemp("", "kushm-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "region")
	cols := []shm.ColumnSpec{{Name: "page-faults", Unit: "count"}, {Name: "context-switches", Unit: "count"}}
	w, err := shm.Create(path, shm.Layout{NCPUs: 2, ProducerKind: abi.ProducerApp, ProducerName: "example",
		HeartbeatPeriod: time.Second, Sections: []shm.SectionSpec{atomicarr.Spec("counters", 2, 2, cols)}},
		shm.CreateOptions{GID: -1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()
	wa, _ := atomicarr.Open(w, "counters")

	r, _ := shm.Open(path, shm.Options{}) // another process would do this
	defer r.Close()
	ra, _ := atomicarr.Open(r, "counters")

	var prev, cur atomicarr.Snapshot
	wa.Update(1, 1e9, 0b11, []uint64{100, 7})
	ra.Snapshot(1, &prev)
	wa.Update(1, 2e9, 0b11, []uint64{350, 9})
	ra.Snapshot(1, &cur)
	d := atomicarr.Diff(&prev, &cur)
	for i, c := range ra.Columns() {
		rate, _ := d.Rate(i)
		fmt.Printf("cpu 1 %s: %.0f/s\n", c.Name, rate)
	}
	// Output:
	// cpu 1 page-faults: 250/s
	// cpu 1 context-switches: 2/s
}
