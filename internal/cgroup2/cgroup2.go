package cgroup2

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kushm/kushm/internal/sys"
)

// Sentinel errors.
var (
	// ErrNoCgroup2: the mount table has no cgroup2 file system.
	ErrNoCgroup2 = errors.New("no cgroup2 hierarchy is mounted")
	// ErrSyntax: a mountinfo line does not have the kernel's format.
	ErrSyntax = errors.New("invalid mountinfo line")
)

// Mount is one line of mountinfo.
type Mount struct {
	Root       string // the mount's root inside its file system ("/" unless a namespace or bind mount)
	MountPoint string // where it is mounted, unescaped
	FSType     string
}

// ParseMountinfo parses the content of /proc/<pid>/mountinfo (proc(5)).
// Octal escapes (\040) in paths are decoded.
func ParseMountinfo(b []byte) ([]Mount, error) {
	var out []Mount
	for n, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Fields(line)
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 7 || sep < 0 || sep+1 >= len(f) {
			return nil, fmt.Errorf("mountinfo line %d %q: %w", n+1, trunc(line), ErrSyntax)
		}
		root, err1 := unescape(f[3])
		mp, err2 := unescape(f[4])
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", n+1, err)
		}
		out = append(out, Mount{Root: root, MountPoint: mp, FSType: f[sep+1]})
	}
	return out, nil
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// unescape decodes the \ooo escapes the kernel writes for space, tab,
// newline and backslash.
func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+4 > len(s) {
			return "", fmt.Errorf("escape at the end of %q: %w", trunc(s), ErrSyntax)
		}
		v, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return "", fmt.Errorf("escape %q in %q: %w", s[i:i+4], trunc(s), ErrSyntax)
		}
		b.WriteByte(byte(v))
		i += 3
	}
	return b.String(), nil
}

// FindMount returns the directory of the cgroup2 hierarchy under root
// ("" or "/": this machine), read from <root>/proc/self/mountinfo, and the
// mount's root inside the hierarchy ("/" unless the process is in a
// cgroup namespace or the mount is a bind mount of a subtree). With
// several cgroup2 mounts the one at /sys/fs/cgroup or below it wins,
// then the first.
func FindMount(root string) (dir, mountRoot string, err error) {
	if root == "" {
		root = "/"
	}
	b, err := os.ReadFile(filepath.Join(root, "proc/self/mountinfo"))
	if err != nil {
		return "", "", fmt.Errorf("find the cgroup2 mount: %w", err)
	}
	ms, err := ParseMountinfo(b)
	if err != nil {
		return "", "", fmt.Errorf("find the cgroup2 mount: %w", err)
	}
	var best *Mount
	for i := range ms {
		m := &ms[i]
		if m.FSType != "cgroup2" {
			continue
		}
		if best == nil || (!underSysFS(best.MountPoint) && underSysFS(m.MountPoint)) {
			best = m
		}
	}
	if best == nil {
		return "", "", fmt.Errorf("find the cgroup2 mount in %s: %w (a cgroup v1 only machine: mount one with 'mount -t cgroup2 none /sys/fs/cgroup/unified')",
			filepath.Join(root, "proc/self/mountinfo"), ErrNoCgroup2)
	}
	return filepath.Join(root, best.MountPoint), best.Root, nil
}

func underSysFS(p string) bool {
	return p == "/sys/fs/cgroup" || strings.HasPrefix(p, "/sys/fs/cgroup/")
}

// ID is the cgroup id of the directory dir: its inode number.
func ID(dir string) (uint64, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return 0, fmt.Errorf("cgroup id of %s: %w", dir, err)
	}
	s, ok := sys.StatOf(st)
	if !ok || !st.IsDir() {
		return 0, fmt.Errorf("cgroup id of %s: not a directory", dir)
	}
	return s.Ino, nil
}

// Resolver names cgroup ids by walking the hierarchy. It caches the walk
// and walks again, at most once per MinRewalk, when asked for an id it
// does not know (a cgroup created since).
type Resolver struct {
	dir       string
	mountRoot string
	// MinRewalk bounds how often an unknown id triggers a new walk
	// (default 1 s): a reader asking for ids of cgroups removed long ago
	// does not walk the tree on every call.
	MinRewalk time.Duration

	mu       sync.Mutex
	paths    map[uint64]string
	lastWalk time.Time
	walks    int
}

// NewResolver finds the cgroup2 mount under root (see FindMount).
func NewResolver(root string) (*Resolver, error) {
	dir, mr, err := FindMount(root)
	if err != nil {
		return nil, err
	}
	return NewResolverAt(dir, mr), nil
}

// NewResolverAt resolves ids in the hierarchy mounted at dir; mountRoot is
// prefixed to every path ("" or "/" for none).
func NewResolverAt(dir, mountRoot string) *Resolver {
	if mountRoot == "/" {
		mountRoot = ""
	}
	return &Resolver{dir: dir, mountRoot: mountRoot, MinRewalk: time.Second}
}

// Dir is the directory of the hierarchy.
func (r *Resolver) Dir() string { return r.dir }

// Walks counts the walks made (for tests and the provider's stats).
func (r *Resolver) Walks() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.walks
}

// Path returns the path of cgroup id ("/" for the root, "/a/b" below it)
// and whether it is known. An unknown id makes the resolver walk the tree
// again unless it walked less than MinRewalk ago.
func (r *Resolver) Path(id uint64) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.paths[id]; ok {
		return p, true
	}
	if r.paths != nil && time.Since(r.lastWalk) < r.MinRewalk {
		return "", false
	}
	if err := r.walkLocked(); err != nil {
		return "", false
	}
	p, ok := r.paths[id]
	return p, ok
}

// Refresh walks the hierarchy now.
func (r *Resolver) Refresh() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.walkLocked()
}

// All returns every cgroup id and path of the last walk (walking first if
// none was made).
func (r *Resolver) All() (map[uint64]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.paths == nil {
		if err := r.walkLocked(); err != nil {
			return nil, err
		}
	}
	out := make(map[uint64]string, len(r.paths))
	for k, v := range r.paths {
		out[k] = v
	}
	return out, nil
}

func (r *Resolver) walkLocked() error {
	paths := make(map[uint64]string, max(len(r.paths), 64))
	err := filepath.WalkDir(r.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == r.dir {
				return err
			}
			return nil // vanished while walked: skip it
		}
		if !d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := sys.StatOf(info)
		if !ok {
			return nil
		}
		rel, err := filepath.Rel(r.dir, p)
		if err != nil {
			return nil
		}
		name := r.mountRoot + "/"
		if rel != "." {
			name = r.mountRoot + "/" + filepath.ToSlash(rel)
		}
		paths[st.Ino] = name
		return nil
	})
	r.lastWalk = time.Now()
	r.walks++
	if err != nil {
		return fmt.Errorf("walk the cgroup2 hierarchy %s: %w", r.dir, err)
	}
	r.paths = paths
	return nil
}

// ProcCgroup returns the cgroup v2 path of a process from the content of
// /proc/<pid>/cgroup (the "0::" line), or "" when it has none.
func ProcCgroup(b []byte) string {
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			return rest
		}
	}
	return ""
}
