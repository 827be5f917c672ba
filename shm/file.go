package shm

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/kushm/kushm/internal/sys"
)

// The file checks every open of a region or control file makes before
// reading a byte (docs/architecture.md, "Trust model"): it is opened
// without blocking and without following a last symbolic link, then its
// type, owner and size are checked on the open descriptor (never on the
// path, which another user could swap in between).

// openChecked opens path (sys.ORdonly or sys.ORdwr) and returns the
// descriptor and what fstat says of it, refusing anything that is not a
// regular file or a character device (the module's /dev/kushm).
func openChecked(path string, flag int) (int, sys.FileStat, error) {
	fd, err := sys.OpenFile(path, flag, followable(path))
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return -1, sys.FileStat{}, fmt.Errorf("%w (no producer: start 'kushm serve' or load the module with 'kushm load')", ErrNoRegion)
		case errors.Is(err, sys.ELOOP):
			return -1, sys.FileStat{}, fmt.Errorf("%s is a symbolic link: refusing to follow it (%w)", path, ErrExists)
		case errors.Is(err, sys.ENXIO):
			return -1, sys.FileStat{}, fmt.Errorf("%s is a socket, not a region file (%w)", path, ErrExists)
		}
		return -1, sys.FileStat{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	st, err := sys.Fstat(fd)
	if err != nil {
		sys.Close(fd)
		return -1, sys.FileStat{}, fmt.Errorf("fstat %s: %w", path, err)
	}
	if err := checkType(path, st); err != nil {
		sys.Close(fd)
		return -1, sys.FileStat{}, err
	}
	return fd, st, nil
}

// followable: the magic links of /proc/<pid>/fd (memfd regions handed
// over by descriptor) are the only symbolic links a region is opened
// through.
func followable(path string) bool { return strings.HasPrefix(path, "/proc/") }

func typeName(mode uint32) string {
	switch mode & sys.TypeMask {
	case sys.TypeReg:
		return "regular file"
	case sys.TypeChr:
		return "character device"
	case sys.TypeFIFO:
		return "FIFO"
	case sys.TypeDir:
		return "directory"
	case sys.TypeLnk:
		return "symbolic link"
	case sys.TypeSock:
		return "socket"
	case sys.TypeBlk:
		return "block device"
	}
	return fmt.Sprintf("file of type %#o", mode&sys.TypeMask)
}

func checkType(path string, st sys.FileStat) error {
	switch st.Mode & sys.TypeMask {
	case sys.TypeReg, sys.TypeChr:
		return nil
	}
	return fmt.Errorf("%s is a %s (owner uid %d), not a region file (%w)", path, typeName(st.Mode), st.UID, ErrExists)
}

// ownerName is "uid N (name)" for messages.
func ownerName(uid uint32) string {
	s := "uid " + strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil && u.Username != "" {
		s += " (" + u.Username + ")"
	}
	return s
}

// TrustedOwner reports whether a region file owned by uid may be read
// by a reader that discovered it: root's, this process's own, or one of
// the uids the configuration names (Options.ProducerUIDs).
func TrustedOwner(uid uint32, extra []uint32) bool {
	if uid == 0 || uid == uint32(sys.Geteuid()) {
		return true
	}
	for _, u := range extra {
		if u == uid {
			return true
		}
	}
	return false
}

func checkOwner(path string, st sys.FileStat, extra []uint32) error {
	if TrustedOwner(st.UID, extra) {
		return nil
	}
	return fmt.Errorf("%s is owned by %s, not by root, this user or a configured producer: another user may have planted it (%w); remove it, or trust that user with --producer-uid %d (KUSHM_PRODUCER_UID)",
		path, ownerName(st.UID), ErrUntrusted, st.UID)
}

// stickyShared reports whether dir is a world-writable directory with
// the sticky bit (/dev/shm, /tmp): where any user may create a name
// first.
func stickyShared(dir string) bool {
	st, err := os.Stat(dir)
	if err != nil {
		return false
	}
	m := st.Mode()
	return m&os.ModeSticky != 0 && m.Perm()&0o002 != 0
}

// MaxImageSize is the largest saved region image ReadImage reads.
const MaxImageSize = 1 << 30

// ReadImage reads a saved region image (for FromBytes) with the checks
// Open makes of a region file: without blocking or following a last
// symbolic link, a regular file only, and at most MaxImageSize bytes.
func ReadImage(path string) ([]byte, error) {
	fd, st, err := openChecked(path, sys.ORdonly)
	if err != nil {
		return nil, fmt.Errorf("read image %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	switch {
	case st.Mode&sys.TypeMask != sys.TypeReg:
		return nil, fmt.Errorf("read image %s: a %s, not a saved image (%w)", path, typeName(st.Mode), ErrExists)
	case st.Size > MaxImageSize:
		return nil, fmt.Errorf("read image %s: %d bytes, more than the %d an image may have: %w", path, st.Size, int64(MaxImageSize), ErrCorrupt)
	}
	b := make([]byte, st.Size)
	n, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("read image %s: %w", path, err)
	}
	return b[:n], nil
}
