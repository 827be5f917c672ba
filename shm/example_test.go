package shm_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/shm"
)

// A producer creates a region; a reader opens it, lists its sections and
// notices when the producer stops.
func Example() {
	dir, _ := os.MkdirTemp("", "kushm-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "region")
	w, err := shm.Create(path, shm.Layout{NCPUs: 2, ProducerKind: abi.ProducerDaemon, ProducerName: "example",
		HeartbeatPeriod: 100 * time.Millisecond,
		Sections:        []shm.SectionSpec{shm.TextSpec("info", "hello"), shm.ControlSpec()}},
		shm.CreateOptions{GID: -1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()

	r, err := shm.Open(path, shm.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	for _, s := range r.Sections() {
		fmt.Println(s.Name, shm.KindName(s.Kind), s.External())
	}
	w.Stop()
	fmt.Println(errors.Is(r.CheckProducer(), shm.ErrStaleProducer))
	// Output:
	// schema schema false
	// info text false
	// control control true
	// true
}
