package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kushm/kushm/internal/cgroup2"
	"github.com/kushm/kushm/userside/client"
	"github.com/kushm/kushm/userside/provider"
)

// TestByCgroup: query/stats/top --by cgroup against a provider counting
// cgroups with its BPF program (root only).
func TestByCgroup(t *testing.T) {
	p, err := provider.New(provider.Config{
		Path: filepath.Join(t.TempDir(), "kushm"), Interval: 10 * time.Millisecond, CgroupInterval: 10 * time.Millisecond,
		Watch: provider.Watch{PIDs: []int{os.Getpid()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; p.Close() })
	path := p.Path()
	c, err := client.Open(client.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	why, off := c.Why("cgroups")
	c.Close()
	if off {
		t.Skipf("no per-cgroup counting here: %s", why)
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Skip(err)
	}
	self := cgroup2.ProcCgroup(b)

	var out bytes.Buffer
	if err := run([]string{"query", "page-faults", "--by", "cgroup", "--region", path, "--interval", "100ms", "-o", "json"}, &out); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	found := false
	for _, r := range rows {
		if _, ok := r["cgroup_id"].(float64); !ok {
			t.Fatalf("row without cgroup_id: %v", r)
		}
		if r["cgroup"] == self && r["metric"] == "page-faults" && r["total"] != nil {
			found = true
		}
	}
	if !found {
		t.Fatalf("no page-faults row for our cgroup %q:\n%s", self, out.String())
	}
	// Migrations are measured in BPF mode (the migrate program): a total,
	// not null.
	out.Reset()
	if err := run([]string{"query", "cpu-migrations", "--by", "cgroup", "--region", path, "--interval", "100ms", "-o", "json"}, &out); err != nil {
		t.Fatal(err)
	}
	rows = nil
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	found = false
	for _, r := range rows {
		if r["cgroup"] == self && r["metric"] == "cpu-migrations" && r["total"] != nil {
			found = true
		}
	}
	if !found {
		t.Fatalf("no cpu-migrations total for our cgroup %q:\n%s", self, out.String())
	}

	out.Reset()
	if err := run([]string{"stats", "--by", "cgroup", "--region", path, "--interval", "100ms"}, &out); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "CGROUP") || !strings.Contains(s, "context-switches/s") || !strings.Contains(s, "cpu-migrations/s") || !strings.Contains(s, "\n"+self+" ") {
		t.Fatalf("stats --by cgroup:\n%s", s)
	}

	out.Reset()
	if err := run([]string{"top", "--by", "cgroup", "--region", path, "--interval", "100ms", "--iterations", "1", "--plain", "--k", "50"}, &out); err != nil {
		t.Fatal(err)
	}
	// This process is watched: it is listed under its cgroup.
	if s := out.String(); !strings.Contains(s, "  "+strconv.Itoa(os.Getpid())+" ") {
		t.Fatalf("top --by cgroup does not nest pid %d:\n%s", os.Getpid(), s)
	}
	if err := run([]string{"stats", "--by", "pod", "--region", path}, &out); err == nil || !strings.Contains(err.Error(), "use cpu or cgroup") {
		t.Fatalf("bad --by: %v", err)
	}
}
