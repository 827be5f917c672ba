package sys

import (
	"errors"
	"sync"

	"golang.org/x/sys/unix"
)

// FileStat is what kushm checks of an open file before trusting it: its
// type, owner, size and identity.
type FileStat struct {
	Mode uint32 // S_IF* type bits and permission bits
	UID  uint32
	GID  uint32
	Size int64
	Dev  uint64
	Ino  uint64
	Rdev uint64
}

// File types of FileStat.Mode.
const (
	TypeMask = unix.S_IFMT
	TypeReg  = unix.S_IFREG
	TypeChr  = unix.S_IFCHR
	TypeFIFO = unix.S_IFIFO
	TypeDir  = unix.S_IFDIR
	TypeLnk  = unix.S_IFLNK
	TypeSock = unix.S_IFSOCK
	TypeBlk  = unix.S_IFBLK
)

// Open flags for OpenFile.
const (
	ORdonly = unix.O_RDONLY
	ORdwr   = unix.O_RDWR
)

// OpenFile opens path without blocking (a FIFO does not wait for a
// writer), without following a symbolic link in the last component and
// close-on-exec. flag is ORdonly or ORdwr. follow allows a symbolic link
// (magic /proc/<pid>/fd links).
func OpenFile(path string, flag int, follow bool) (int, error) {
	flag |= unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOCTTY
	if !follow {
		flag |= unix.O_NOFOLLOW
	}
	for {
		fd, err := unix.Open(path, flag, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return fd, err
	}
}

// Fstat describes the open file fd.
func Fstat(fd int) (FileStat, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return FileStat{}, err
	}
	return statOf(&st), nil
}

// Lstat describes path without following a last symbolic link.
func Lstat(path string) (FileStat, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return FileStat{}, err
	}
	return statOf(&st), nil
}

func statOf(st *unix.Stat_t) FileStat {
	return FileStat{Mode: st.Mode, UID: st.Uid, GID: st.Gid, Size: st.Size,
		Dev: uint64(st.Dev), Ino: st.Ino, Rdev: uint64(st.Rdev)}
}

// Geteuid is the effective uid of this process.
func Geteuid() int { return unix.Geteuid() }

// PidState is what kill(pid, 0) says of a process.
type PidState int

// PidState values.
const (
	PidUnknown PidState = iota // pid 0, or an error other than ESRCH/EPERM
	PidAlive                   // the process exists (possibly another user's: EPERM)
	PidDead                    // ESRCH: no such process in this pid namespace
)

// pidMaxLimit is the kernel's PID_MAX_LIMIT (4M on 64-bit).
const pidMaxLimit = 4 << 20

// ProcessState checks whether pid exists with kill(pid, 0).
func ProcessState(pid int) PidState {
	if pid <= 0 {
		return PidUnknown
	}
	if pid > pidMaxLimit {
		return PidDead // beyond PID_MAX_LIMIT: no process can have it
	}
	switch err := unix.Kill(pid, 0); {
	case err == nil, errors.Is(err, unix.EPERM):
		return PidAlive
	case errors.Is(err, unix.ESRCH):
		return PidDead
	}
	return PidUnknown
}

// Errors callers compare against.
var (
	ELOOP = unix.ELOOP
	ENXIO = unix.ENXIO
)

var pidNS struct {
	once sync.Once
	ino  uint64
}

// PidNamespace is the inode of this process's pid namespace
// (/proc/self/ns/pid), 0 when it cannot be read: pids are only meaningful
// between processes of the same namespace.
func PidNamespace() uint64 {
	pidNS.once.Do(func() {
		var st unix.Stat_t
		if unix.Stat("/proc/self/ns/pid", &st) == nil {
			pidNS.ino = st.Ino
		}
	})
	return pidNS.ino
}
