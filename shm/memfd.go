package shm

import (
	"fmt"
	"os"
	"sync/atomic"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/sys"
)

// CreateMemfd makes a region in an anonymous memory file (no path in any
// file system) for a producer that hands the descriptor to its readers
// (over a unix socket, or as /proc/<pid>/fd/<n>). The control section is
// kept inline. The file is sealed against growing and shrinking, so no
// mapping of it can fault. Fd returns the descriptor; Close closes it.
func CreateMemfd(name string, l Layout) (*Region, error) {
	r, err := createMemfd(name, l)
	if err != nil {
		return nil, fmt.Errorf("create memfd region %q: %w", name, err)
	}
	return r, nil
}

func createMemfd(name string, l Layout) (*Region, error) {
	p, err := makePlan(l, true)
	if err != nil {
		return nil, err
	}
	fd, err := sys.MemfdCreate(name)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			sys.Close(fd)
		}
	}()
	if err := sys.Ftruncate(fd, int64(p.size)); err != nil {
		return nil, fmt.Errorf("ftruncate: %w", err)
	}
	if err := sys.SealSize(fd); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	mem, err := sys.Mmap(fd, 0, int(p.size), sys.ProtRead|sys.ProtWrite)
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	r := &Region{path: fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), fd), mem: mem, writable: true, fd: fd}
	if err := p.write(l, mem, nil); err != nil {
		r.unmap()
		return nil, err
	}
	atomic.StoreUint64(r.u64(0), abi.Magic) // published last
	atomic.StoreUint32(r.u32(abi.HeaderStateOff), abi.StateRunning)
	if err := r.load(); err != nil {
		r.unmap()
		return nil, fmt.Errorf("self-check: %w", err)
	}
	ok = true
	return r, nil
}

// Fd is the descriptor of a memfd region, or -1.
func (r *Region) Fd() int {
	if r.fd == 0 {
		return -1
	}
	return r.fd
}
