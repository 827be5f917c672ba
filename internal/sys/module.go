package sys

import "golang.org/x/sys/unix"

// Errno is a system call's error number.
type Errno = unix.Errno

// Error numbers the module loader tells apart.
const (
	EBADMSG      = unix.EBADMSG
	EBUSY        = unix.EBUSY
	EEXIST       = unix.EEXIST
	EINVAL       = unix.EINVAL
	EOPNOTSUPP   = unix.EOPNOTSUPP
	EKEYREJECTED = unix.EKEYREJECTED
	ENOENT       = unix.ENOENT
	ENOEXEC      = unix.ENOEXEC
	ENOKEY       = unix.ENOKEY
	ENOSYS       = unix.ENOSYS
	EWOULDBLOCK  = unix.EWOULDBLOCK
)

// FinitModule loads the kernel module of file fd with params
// (finit_module(2)).
func FinitModule(fd int, params string) error { return unix.FinitModule(fd, params, 0) }

// FinitModuleCompressed loads a compressed module file (.ko.xz, .ko.zst,
// .ko.gz), which the kernel decompresses itself
// (MODULE_INIT_COMPRESSED_FILE; CONFIG_MODULE_DECOMPRESS).
func FinitModuleCompressed(fd int, params string) error {
	return unix.FinitModule(fd, params, unix.MODULE_INIT_COMPRESSED_FILE)
}

// InitModule loads a module image from memory (init_module(2)).
func InitModule(image []byte, params string) error { return unix.InitModule(image, params) }

// DeleteModule unloads module name without waiting for its users
// (delete_module(2) with O_NONBLOCK).
func DeleteModule(name string) error { return unix.DeleteModule(name, unix.O_NONBLOCK) }

// KernelRelease is uname -r.
func KernelRelease() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", err
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}

// ErrnoName is the symbolic name of e ("EACCES"), or "" when unknown.
func ErrnoName(e Errno) string { return unix.ErrnoName(e) }
