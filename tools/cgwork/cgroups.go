// SPDX-License-Identifier: Apache-2.0

package cgwork

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kushm/kushm/internal/cgroup2"
)

// Cgroups is one test's fresh cgroups under the cgroup2 mount.
type Cgroups struct {
	t     testing.TB
	Mount string // the cgroup2 mount (/sys/fs/cgroup/unified on a hybrid layout)
	dirs  []string
}

// NewCgroups skips t without root or without a cgroup2 mount, holds
// Exclusive for the rest of t (the cgroup tests of other packages wait),
// and removes the cgroups Mkdir made, newest first, at t's end, before
// the lock is released.
func NewCgroups(t testing.TB) *Cgroups {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (BPF, cgroup creation)")
	}
	mnt, _, err := cgroup2.FindMount("/")
	if err != nil {
		t.Skip(err)
	}
	unlock, err := Exclusive()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unlock) // cleanups run last first: after the removals below
	c := &Cgroups{t: t, Mount: mnt}
	t.Cleanup(func() {
		for i := len(c.dirs) - 1; i >= 0; i-- {
			os.Remove(c.dirs[i]) // a cgroup the test removed itself: ENOENT
		}
	})
	return c
}

// Mkdir creates cgroup name (a path relative to the mount) and returns
// its directory and id.
func (c *Cgroups) Mkdir(name string) (dir string, id uint64) {
	c.t.Helper()
	dir = filepath.Join(c.Mount, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		c.t.Fatal(err)
	}
	c.dirs = append(c.dirs, dir)
	id, err := cgroup2.ID(dir)
	if err != nil {
		c.t.Fatal(err)
	}
	return dir, id
}

// Remove removes cgroup dir (made by Mkdir) now, not at the end.
func (c *Cgroups) Remove(dir string) error {
	if err := os.Remove(dir); err != nil {
		return err
	}
	for i := len(c.dirs) - 1; i >= 0; i-- {
		if c.dirs[i] == dir {
			c.dirs = append(c.dirs[:i], c.dirs[i+1:]...)
			break
		}
	}
	return nil
}

// EnableController enables, when the root's cgroup.subtree_control is
// empty, the first controller its cgroup.controllers lists, until the end
// of the test. On a cgroup2 hierarchy that nothing has changed since
// boot (the qemu guests' own mount: no controller enabled below the
// root, none taken away by a v1 mount), new cgroups get no perf_event
// controller, implicit as it is on cgroup2: no perf event counts them
// (perf cgroup events fail with ENOENT, the cgroup-switches event sees
// no switch between them). systemd's hierarchies always have some.
func (c *Cgroups) EnableController() {
	c.t.Helper()
	ctl := filepath.Join(c.Mount, "cgroup.subtree_control")
	b, err := os.ReadFile(ctl)
	if err != nil || len(strings.TrimSpace(string(b))) > 0 {
		return
	}
	avail, err := os.ReadFile(filepath.Join(c.Mount, "cgroup.controllers"))
	if err != nil {
		return
	}
	f := strings.Fields(string(avail))
	if len(f) == 0 {
		return
	}
	if err := os.WriteFile(ctl, []byte("+"+f[0]), 0); err != nil {
		c.t.Logf("enable %s in %s: %v", f[0], ctl, err)
		return
	}
	c.t.Cleanup(func() {
		if err := os.WriteFile(ctl, []byte("-"+f[0]), 0); err != nil {
			c.t.Errorf("disable %s again in %s: %v", f[0], ctl, err)
		}
	})
}
