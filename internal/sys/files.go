package sys

import (
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

// StatOf returns the inode fields of fi (from os.Stat, os.Lstat or
// File.Stat), and false when fi carries none (a fixture's FileInfo).
func StatOf(fi fs.FileInfo) (FileStat, bool) {
	if fi == nil {
		return FileStat{}, false
	}
	s, ok := fi.Sys().(*syscall.Stat_t) // os's, not x/sys/unix's type
	if !ok {
		return FileStat{}, false
	}
	return FileStat{Mode: s.Mode, UID: s.Uid, GID: s.Gid, Size: s.Size,
		Dev: uint64(s.Dev), Ino: s.Ino, Rdev: uint64(s.Rdev)}, true
}

// LockExclusive takes an exclusive flock(2) on fd, waiting for it.
func LockExclusive(fd int) error { return unix.Flock(fd, unix.LOCK_EX) }
