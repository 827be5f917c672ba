package cgroup2

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// hybrid is this project's build machine: /sys/fs/cgroup is a tmpfs of v1
// hierarchies, cgroup2 is at /sys/fs/cgroup/unified.
const hybrid = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw
`

const unified = `22 1 0:21 / /sys rw - sysfs sysfs rw
29 22 0:26 / /sys/fs/cgroup rw,nosuid shared:4 master:1 - cgroup2 cgroup2 rw,nsdelegate
`

const v1only = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
`

func fixture(t *testing.T, mountinfo string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "proc/self"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "proc/self/mountinfo"), []byte(mountinfo), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestFindMount(t *testing.T) {
	for _, tc := range []struct {
		name, mi, want string
		err            error
	}{
		{"hybrid", hybrid, "sys/fs/cgroup/unified", nil},
		{"unified", unified, "sys/fs/cgroup", nil},
		{"v1 only", v1only, "", ErrNoCgroup2},
		{"garbage", "1 2 3\n", "", ErrSyntax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := fixture(t, tc.mi)
			dir, mr, err := FindMount(root)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if tc.err != nil {
				return
			}
			if want := filepath.Join(root, tc.want); dir != want || mr != "/" {
				t.Fatalf("dir %q root %q, want %q /", dir, mr, want)
			}
		})
	}
}

func TestParseMountinfoEscapes(t *testing.T) {
	ms, err := ParseMountinfo([]byte(`41 31 0:38 /a\040b /mnt/my\040cg rw - cgroup2 none rw` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if ms[0].Root != "/a b" || ms[0].MountPoint != "/mnt/my cg" || ms[0].FSType != "cgroup2" {
		t.Fatalf("%+v", ms[0])
	}
	for _, bad := range []string{`1 2 0:1 / /x\04 rw - cgroup2 a b`, `1 2 0:1 / /x\0z9 rw - cgroup2 a b`, `1 2 0:1 / /x rw cgroup2`} {
		if _, err := ParseMountinfo([]byte(bad)); !errors.Is(err, ErrSyntax) {
			t.Errorf("%q: err %v, want ErrSyntax", bad, err)
		}
	}
}

func TestResolverFixture(t *testing.T) {
	root := fixture(t, hybrid)
	cg := filepath.Join(root, "sys/fs/cgroup/unified")
	for _, d := range []string{"system.slice/foo.service", "user.slice"} {
		if err := os.MkdirAll(filepath.Join(cg, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r, err := NewResolver(root)
	if err != nil {
		t.Fatal(err)
	}
	id, err := ID(filepath.Join(cg, "system.slice/foo.service"))
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := r.Path(id); !ok || p != "/system.slice/foo.service" {
		t.Fatalf("Path(%d) = %q %v", id, p, ok)
	}
	rootID, _ := ID(cg)
	if p, ok := r.Path(rootID); !ok || p != "/" {
		t.Fatalf("root: %q %v", p, ok)
	}
	// A cgroup created after the walk: found by the re-walk an unknown id
	// triggers, but not more often than MinRewalk.
	if err := os.Mkdir(filepath.Join(cg, "late"), 0o755); err != nil {
		t.Fatal(err)
	}
	late, _ := ID(filepath.Join(cg, "late"))
	r.MinRewalk = 1 << 62
	if _, ok := r.Path(late); ok {
		t.Fatal("re-walked before MinRewalk")
	}
	r.MinRewalk = 0
	if p, ok := r.Path(late); !ok || p != "/late" {
		t.Fatalf("late: %q %v", p, ok)
	}
	if _, ok := r.Path(^uint64(0)); ok {
		t.Fatal("bogus id resolved")
	}
}

// TestResolverThisMachine checks the real hierarchy: the id of our own
// cgroup directory resolves to the path /proc/self/cgroup names.
func TestResolverThisMachine(t *testing.T) {
	r, err := NewResolver("/")
	if errors.Is(err, ErrNoCgroup2) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Skip(err)
	}
	self := ProcCgroup(b)
	if self == "" {
		t.Skip("no cgroup v2 line in /proc/self/cgroup")
	}
	id, err := ID(filepath.Join(r.Dir(), self))
	if err != nil {
		t.Skipf("own cgroup not visible in this mount namespace: %v", err)
	}
	if p, ok := r.Path(id); !ok || p != self {
		t.Fatalf("Path(%d) = %q %v, want %q", id, p, ok, self)
	}
}

func FuzzParseMountinfo(f *testing.F) {
	for _, s := range []string{hybrid, unified, v1only, `1 2 0:1 /a\040b /x\134y rw - cgroup2 a b`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := ParseMountinfo(b)
		if err != nil && !errors.Is(err, ErrSyntax) {
			t.Fatalf("error not ErrSyntax: %v", err)
		}
		for _, m := range ms {
			if m.FSType == "" {
				t.Fatal("empty fstype accepted")
			}
		}
	})
}
