package rcuhash_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
)

// The structure writer inserts and updates; a reader in another process
// (here: another mapping) looks keys up without locks or syscalls.
func Example() {
	dir, _ := os.MkdirTemp("", "kushm-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "region")
	spec, _ := rcuhash.Spec("procs", rcuhash.Geometry{Capacity: 64, ValueSize: 8, DataSize: 16}, nil)
	w, err := shm.Create(path, shm.Layout{NCPUs: 1, ProducerKind: abi.ProducerApp, ProducerName: "example",
		HeartbeatPeriod: time.Second, Sections: []shm.SectionSpec{spec}}, shm.CreateOptions{GID: -1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()
	tw, _ := rcuhash.OpenWriter(w, "procs")
	tw.Insert(4242, []byte("myserver"), nil)
	tw.UpdateWords(4242, 0, []uint64{17})

	r, _ := shm.Open(path, shm.Options{})
	defer r.Close()
	tr, _ := rcuhash.Open(r, "procs")
	v := make([]byte, 8)
	if err := tr.Lookup(4242, v); err == nil {
		fmt.Println("pid 4242:", binary.LittleEndian.Uint64(v))
	}
	data := make([]byte, 16)
	tr.Read(4242, data, nil)
	fmt.Printf("comm %s\n", data[:8])
	fmt.Println(tr.Lookup(1, v))
	// Output:
	// pid 4242: 17
	// comm myserver
	// rcuhash "procs": key 1: key not found
}
