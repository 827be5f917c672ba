package shm

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/kushm/kushm/internal/sys"
)

// The producer's side of the .ctl file. Anyone in the file's group may
// write it, and so may also truncate it, grow it or (where the directory
// allows) replace it. The producer keeps the descriptor it created, checks
// it between reads (ControlChanged) and, when it changed, makes a fresh
// one (RenewControl); its reads of the mapping run under Guard, so a
// truncation between check and read is an error, not a SIGBUS.

// producerCtl is the control file a producer created or adopted.
type producerCtl struct {
	file *os.File
	size uint64 // exact size of the file
	mode fs.FileMode
	gid  int
	id   sys.FileStat
}

// makeFile creates a file of size bytes under an unpredictable temporary
// name next to name (so no other user can plant or pre-open it), with
// mode and group gid (< 0 or 0: the creator's), and maps it read-write.
func makeFile(name string, size uint64, mode fs.FileMode, gid int) (*os.File, []byte, error) {
	f, err := os.CreateTemp(filepath.Dir(name), filepath.Base(name)+".tmp*")
	if err != nil {
		return nil, nil, err
	}
	tmp := f.Name()
	fail := func(err error) (*os.File, []byte, error) {
		f.Close()
		os.Remove(tmp)
		return nil, nil, err
	}
	if err := f.Chmod(mode); err != nil { // umask-proof
		return fail(err)
	}
	if gid >= 0 && gid != os.Getgid() && gid != 0 {
		if err := f.Chown(-1, gid); err != nil {
			return fail(fmt.Errorf("chgrp %d: %w", gid, err))
		}
	}
	if err := f.Truncate(int64(size)); err != nil {
		return fail(err)
	}
	m, err := sys.Mmap(int(f.Fd()), 0, int(size), sys.ProtRead|sys.ProtWrite)
	if err != nil {
		return fail(fmt.Errorf("mmap: %w", err))
	}
	return f, m, nil
}

func keepControl(f *os.File, size uint64, opts CreateOptions) (*producerCtl, error) {
	st, err := sys.Fstat(int(f.Fd()))
	if err != nil {
		return nil, fmt.Errorf("fstat control file: %w", err)
	}
	mode := opts.ControlMode
	if mode == 0 {
		mode = 0o660
	}
	return &producerCtl{file: f, size: size, mode: mode, gid: opts.GID, id: st}, nil
}

// ControlChanged reports, for a producer, whether its .ctl file no
// longer is what it created: truncated, grown, or another file at the
// path (ErrChanged, naming the file and what happened). It touches no
// mapped memory (fstat, lstat). Readers and regions without a control
// file always pass.
func (r *Region) ControlChanged() error {
	c := r.pctl
	if c == nil {
		return nil
	}
	name := r.path + ".ctl"
	st, err := sys.Fstat(int(c.file.Fd()))
	if err != nil {
		return fmt.Errorf("fstat %s: %v: %w", name, err, ErrChanged)
	}
	if uint64(st.Size) != c.size {
		return fmt.Errorf("%s was resized to %d bytes (by a member of its group?), %d expected: %w", name, st.Size, c.size, ErrChanged)
	}
	cur, err := sys.Lstat(name)
	switch {
	case err != nil:
		return fmt.Errorf("%s: %v: %w", name, err, ErrChanged)
	case cur.Dev != c.id.Dev || cur.Ino != c.id.Ino:
		return fmt.Errorf("%s was replaced by a %s of %s: %w", name, typeName(cur.Mode), ownerName(cur.UID), ErrChanged)
	}
	return nil
}

// RenewControl gives a producer a fresh .ctl file (same size, mode and
// group), renamed over whatever is at the path now, with the values of
// the old one where they can still be read (else the section's initial
// contents from init, which may be nil). It swaps the control mapping:
// slices from earlier Bytes calls on the control section must not be used
// after it (the caller serialises its users of the section).
func (r *Region) RenewControl(init func(b []byte) error) error {
	c := r.pctl
	if c == nil || r.ctl == nil || r.ctlIdx < 0 {
		return fmt.Errorf("renew control file of %s: %w", r.path, ErrNoSection)
	}
	s := r.sections[r.ctlIdx]
	name := r.path + ".ctl"
	f, mem, err := makeFile(name, c.size, c.mode, c.gid)
	if err != nil {
		return fmt.Errorf("renew control file %s: %w", name, err)
	}
	nc, err := keepControl(f, c.size, CreateOptions{ControlMode: c.mode, GID: c.gid})
	if err == nil {
		sec := mem[s.Offset : s.Offset+s.Size : s.Offset+s.Size]
		if gerr := Guard(func() error { copy(sec, r.ctl); return nil }); gerr != nil && init != nil {
			clear(sec)
			err = init(sec)
		}
	}
	if err == nil {
		err = replace(f.Name(), name)
	}
	if err != nil {
		sys.Munmap(mem)
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("renew control file %s: %w", name, err)
	}
	nc.id, _ = sys.Fstat(int(f.Fd()))
	old, oldFile := r.ctl, c.file
	r.ctl, r.pctl = mem[s.Offset:s.Offset+s.Size:s.Offset+s.Size], nc
	register(r)
	// The whole old file mapping (ctl is the section's slice of it)
	// becomes zero pages: a view of the old control section reads zeros
	// instead of faulting, until the Region is unreachable.
	if sys.Retire(old) != nil {
		retireFailed.Add(1)
	}
	runtime.AddCleanup(r, releaseSpans, [][]byte{old})
	oldFile.Close()
	return nil
}
