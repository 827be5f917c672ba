package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startCmd runs a long-lived subcommand until the test ends.
func startCmd(t *testing.T, args ...string) (stderr *syncBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr = &syncBuffer{}
	root := newRoot(io.Discard, stderr)
	root.SetArgs(args)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	var err error
	stopped := false
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			err = <-done
		}
		return err
	}
	t.Cleanup(func() { stop() })
	return stderr, stop
}

func httpGet(base, path string) (int, []byte, error) {
	res, err := http.Get(base + path)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// waitOK polls path until it answers 200.
func waitOK(t *testing.T, base, path string) []byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, b, err := httpGet(base, path)
		if err == nil && code == 200 {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%s: %d %v %s", base, path, code, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// shape is the structure of a JSON document: its keys and the kinds of
// its values (null matches anything; arrays by their first element).
func shape(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, e := range x {
			m[k] = shape(e)
		}
		return m
	case []any:
		if len(x) == 0 {
			return []any{}
		}
		return []any{shape(x[0])}
	case nil:
		return nil
	}
	return fmt.Sprintf("%T", v)
}

// dynamicKeys are the objects whose keys are data.
var dynamicKeys = map[string]bool{"rates_per_s": true, "totals": true}

// sameShape reports the first difference between the shapes of a and b.
func sameShape(path string, a, b any) string {
	if a == nil || b == nil {
		return ""
	}
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			return path + ": object vs " + fmt.Sprint(b)
		}
		if dynamicKeys[path[strings.LastIndexByte(path, '.')+1:]] {
			return "" // keyed by data (metric names), not by field
		}
		for k := range x {
			if _, ok := y[k]; !ok {
				return path + "." + k + ": missing on one side"
			}
			if d := sameShape(path+"."+k, x[k], y[k]); d != "" {
				return d
			}
		}
		for k := range y {
			if _, ok := x[k]; !ok {
				return path + "." + k + ": missing on the other side"
			}
		}
		return ""
	case []any:
		y, ok := b.([]any)
		if !ok {
			return path + ": array vs " + fmt.Sprint(b)
		}
		if len(x) == 0 || len(y) == 0 {
			return ""
		}
		return sameShape(path+"[0]", x[0], y[0])
	}
	if a != b {
		return fmt.Sprintf("%s: %v vs %v", path, a, b)
	}
	return ""
}

func decodeShape(t *testing.T, what string, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v: %s", what, err, b)
	}
	return shape(v)
}

// TestWebSameDocuments: every /api document of `kushm web` is the
// document the matching command prints with -o json.
func TestWebSameDocuments(t *testing.T) {
	region := startProvider(t)
	addr := freeAddr(t)
	stderr, stop := startCmd(t, "web", "--region", region, "--listen", addr, "--interval", "50ms")
	base := "http://" + addr
	waitOK(t, base, "/api/stats")
	for _, c := range []struct {
		api  string
		args []string
	}{
		{"/api/status", []string{"status"}},
		{"/api/stats", []string{"stats", "--interval", "50ms"}},
		{"/api/query?metric=page-faults&top=3", []string{"query", "page-faults", "--top", "3", "--interval", "50ms"}},
		{"/api/syscalls", []string{"syscalls"}},
		{"/api/sections", []string{"dump"}},
		{"/api/cgroups", []string{"stats", "--by", "cgroup", "--interval", "50ms"}},
	} {
		_, b, err := httpGet(base, c.api)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := run(append([]string{"--region", region, "-o", "json"}, c.args...), &out); err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if d := sameShape("", decodeShape(t, c.api, b), decodeShape(t, strings.Join(c.args, " "), out.Bytes())); d != "" {
			t.Errorf("%s and kushm %s -o json differ: %s", c.api, c.args[0], d)
		}
	}
	code, b, _ := httpGet(base, "/metrics")
	if code != 200 || !bytes.Contains(b, []byte("kushm_heartbeat_age_seconds")) {
		t.Errorf("/metrics: %d", code)
	}
	if err := stop(); err != nil {
		t.Fatalf("web: %v", err)
	}
	if !strings.Contains(stderr.String(), "web view of "+region) || strings.Contains(stderr.String(), "warning") {
		t.Errorf("stderr: %s", stderr.String())
	}
}

// TestServeListen: `kushm serve --listen` serves the page and /api of the
// region it produces, and a non-loopback address is warned about.
func TestServeListen(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the provider")
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	region := filepath.Join(t.TempDir(), "kushm")
	stderr, stop := startCmd(t, "serve", "--region", region, "--interval", "50ms", "--listen", "0.0.0.0:"+port, "--no-gops", "--uid", "-2")
	base := "http://" + addr
	b := waitOK(t, base, "/api/status")
	var st struct{ Path, State string }
	json.Unmarshal(b, &st)
	if st.Path != region || st.State != "running" {
		t.Errorf("status: %s", b)
	}
	if _, page, _ := httpGet(base, "/"); !bytes.Contains(page, []byte("<title>kushm</title>")) {
		t.Errorf("page: %s", page)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if !strings.Contains(stderr.String(), "not a loopback address") {
		t.Errorf("no warning for 0.0.0.0:\n%s", stderr.String())
	}
	// A taken port fails before any region is created.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	region2 := filepath.Join(t.TempDir(), "kushm")
	err := run([]string{"serve", "--region", region2, "--listen", ln.Addr().String(), "--no-gops"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("taken port: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
