package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kushm/kushm/userside/provider"
)

func startProvider(t *testing.T) string {
	t.Helper()
	p, err := provider.New(provider.Config{
		Path: filepath.Join(t.TempDir(), "kushm"), Interval: 10 * time.Millisecond,
		Watch: provider.Watch{PIDs: []int{os.Getpid()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; p.Close() })
	return p.Path()
}

func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the provider")
	}
	var out bytes.Buffer
	if err := run([]string{"demo", "--pages", "1000", "--interval", "20ms"}, &out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"kushm query cache-misses", "page-faults", "this process", "provider stopped"} {
		if !strings.Contains(s, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "FEWER") {
		t.Fatalf("page faults below pages touched:\n%s", s)
	}
}

func TestReadCommands(t *testing.T) {
	path := startProvider(t)
	var out bytes.Buffer
	if err := run([]string{"status", "--region", path}, &out); err != nil || !strings.Contains(out.String(), "daemon kushm-serve") {
		t.Fatalf("status: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := run([]string{"query", "cache-misses", "--region", path, "--interval", "50ms", "--pid", "1"}, &out); err != nil || !strings.Contains(out.String(), "cache-misses") {
		t.Fatalf("query: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := run([]string{"query", "page-faults", "--region", path, "--interval", "50ms", "-o", "json", "--cpu", "0"}, &out); err != nil {
		t.Fatal(err)
	}
	var res struct {
		CPUs []map[string]any `json:"cpus"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || len(res.CPUs) != 1 || res.CPUs[0]["cpu"] != 0.0 {
		t.Fatalf("query json: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := run([]string{"stats", "--region", path, "--interval", "50ms", "-o", "json"}, &out); err != nil || !json.Valid(out.Bytes()) {
		t.Fatalf("stats: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := run([]string{"top", "--region", path, "--interval", "20ms", "--iterations", "2", "--plain"}, &out); err != nil || !strings.Contains(out.String(), "kushm top") || !strings.Contains(out.String(), "per CPU") {
		t.Fatalf("top: %v\n%s", err, out.String())
	}
	if err := run([]string{"query", "nonsense", "--region", path}, &out); err == nil || !strings.Contains(err.Error(), "unknown metric") {
		t.Fatalf("bad metric: %v", err)
	}
	if err := run([]string{"stats", "--region", path, "-o", "yaml"}, &out); err == nil {
		t.Fatal("bad output format accepted")
	}
}

func TestNoRegion(t *testing.T) {
	var out bytes.Buffer
	err := run([]string{"query", "cache-misses", "--root", t.TempDir()}, &out)
	if err == nil || !strings.Contains(err.Error(), "kushm serve") {
		t.Fatalf("no region: %v", err)
	}
	err = run([]string{"status", "--root", t.TempDir()}, &out)
	if err == nil || !strings.Contains(err.Error(), "no producer") {
		t.Fatalf("status without region: %v", err)
	}
}

func TestServeBadInput(t *testing.T) {
	taken := filepath.Join(t.TempDir(), "file")
	os.WriteFile(taken, []byte("data"), 0o644)
	var out bytes.Buffer
	err := run([]string{"serve", "--region", taken, "--no-gops"}, &out)
	if err == nil || !strings.Contains(err.Error(), "not a kushm region") {
		t.Fatalf("serve on a taken path: %v", err)
	}
	err = run([]string{"serve", "--region", filepath.Join(t.TempDir(), "k"), "--interval", "1ms", "--no-gops"}, &out)
	if err == nil || !strings.Contains(err.Error(), "interval") {
		t.Fatalf("serve with a 1ms interval: %v", err)
	}
	err = run([]string{"serve", "--region", filepath.Join(t.TempDir(), "k"), "--mode", "0666", "--no-gops"}, &out)
	if err == nil || !strings.Contains(err.Error(), "world-writable") {
		t.Fatalf("serve world-writable: %v", err)
	}
	// The taken path fails after --gomaxprocs applied: the process's
	// setting is back as it was when serve returns.
	before := runtime.GOMAXPROCS(0)
	err = run([]string{"serve", "--region", taken, "--gomaxprocs", "3", "--no-gops"}, &out)
	if err == nil || runtime.GOMAXPROCS(0) != before {
		t.Fatalf("serve --gomaxprocs 3 on a taken path: %v; GOMAXPROCS %d after, %d before", err, runtime.GOMAXPROCS(0), before)
	}
	err = run([]string{"serve", "--region", filepath.Join(t.TempDir(), "k"), "--gomaxprocs", "-1", "--no-gops"}, &out)
	if err == nil || !strings.Contains(err.Error(), "--gomaxprocs -1") {
		t.Fatalf("serve --gomaxprocs -1: %v", err)
	}
}
