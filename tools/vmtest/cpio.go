package vmtest

import (
	"fmt"
	"io"
	"os"
	"path"
	"sort"
)

// cpioWriter writes a "newc" (SVR4, 070701) cpio archive, the format the
// kernel unpacks as an initramfs. Writing it here instead of calling
// cpio(1) lets an unprivileged build create /dev/console.
type cpioWriter struct {
	w    io.Writer
	ino  uint32
	dirs map[string]bool
	err  error
}

func newCPIO(w io.Writer) *cpioWriter {
	return &cpioWriter{w: w, ino: 1, dirs: map[string]bool{"": true, ".": true, "/": true}}
}

const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeChr  = 0o020000
	modeLink = 0o120000
)

func pad4(n int) int { return (4 - n%4) % 4 }

func (c *cpioWriter) entry(name string, mode uint32, data []byte, rmaj, rmin uint32) {
	if c.err != nil {
		return
	}
	nlink := uint32(1)
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmaj, rmin, len(name)+1, 0)
	c.ino++
	buf := make([]byte, 0, len(hdr)+len(name)+8+len(data)+4)
	buf = append(buf, hdr...)
	buf = append(buf, name...)
	buf = append(buf, 0)
	buf = append(buf, make([]byte, pad4(len(hdr)+len(name)+1))...)
	buf = append(buf, data...)
	buf = append(buf, make([]byte, pad4(len(data)))...)
	_, c.err = c.w.Write(buf)
}

// mkdirAll adds name and its parents as directories.
func (c *cpioWriter) mkdirAll(name string) {
	if c.dirs[name] {
		return
	}
	c.mkdirAll(path.Dir(name))
	c.dirs[name] = true
	c.entry(name, modeDir|0o755, nil, 0, 0)
}

func (c *cpioWriter) file(name string, perm uint32, data []byte) {
	c.mkdirAll(path.Dir(name))
	c.entry(name, modeFile|perm, data, 0, 0)
}

func (c *cpioWriter) symlink(name, target string) {
	c.mkdirAll(path.Dir(name))
	c.entry(name, modeLink|0o777, []byte(target), 0, 0)
}

func (c *cpioWriter) chardev(name string, perm, major, minor uint32) {
	c.mkdirAll(path.Dir(name))
	c.entry(name, modeChr|perm, nil, major, minor)
}

// copyFile adds the host file src as name, keeping its exec bit.
func (c *cpioWriter) copyFile(name, src string) {
	if c.err != nil {
		return
	}
	b, err := os.ReadFile(src)
	if err != nil {
		c.err = err
		return
	}
	st, err := os.Stat(src)
	if err != nil {
		c.err = err
		return
	}
	c.file(name, uint32(st.Mode().Perm()), b)
}

// copyTree adds the host directory src under name (regular files and
// directories; symlinks are followed), returning the bytes added.
func (c *cpioWriter) copyTree(name, src string) int64 {
	var total int64
	ents, err := os.ReadDir(src)
	if err != nil {
		c.err = err
		return 0
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	c.mkdirAll(name)
	for _, e := range ents {
		s := path.Join(src, e.Name())
		st, err := os.Stat(s)
		if err != nil {
			continue
		}
		if st.IsDir() {
			total += c.copyTree(path.Join(name, e.Name()), s)
		} else if st.Mode().IsRegular() {
			c.copyFile(path.Join(name, e.Name()), s)
			total += st.Size()
		}
	}
	return total
}

func (c *cpioWriter) close() error {
	c.entry("TRAILER!!!", 0, nil, 0, 0)
	if c.err != nil {
		return c.err
	}
	// The kernel wants the archive padded to a multiple of 512.
	return nil
}
