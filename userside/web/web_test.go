package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kushm/kushm/userside/client"
	"github.com/kushm/kushm/userside/provider"
	"github.com/kushm/kushm/userside/web"
)

// startProvider runs a daemon on a temporary region and returns it with
// a function that stops it (marking the region stopped).
func startProvider(t testing.TB, interval time.Duration) (*provider.Provider, func()) {
	t.Helper()
	p, err := provider.New(provider.Config{
		Path: filepath.Join(t.TempDir(), "kushm"), Interval: interval,
		ProcInterval: interval, Watch: provider.Watch{PIDs: []int{os.Getpid()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(func() { stop(); p.Close() })
	return p, stop
}

// waitProducerSample waits (at most 10 s) until the producer, sampling
// in its own goroutine, has taken a sample after this call: rates need
// a second server sample that sees a newer producer sample, and on a
// loaded machine the producer's 20 ms tick can be late by far more.
func waitProducerSample(t testing.TB, p *provider.Provider) {
	t.Helper()
	n := p.Stats().Ticks
	deadline := time.Now().Add(10 * time.Second)
	for p.Stats().Ticks <= n {
		if time.Now().After(deadline) {
			t.Fatalf("the producer took no sample in 10 s (%d samples)", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newServer(t testing.TB, path string, o web.Options) (*web.Server, *client.Client) {
	t.Helper()
	c, err := client.Open(client.Options{Path: path, AllowStale: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return web.New(c, o), c
}

func getJSON(t testing.TB, h http.Handler, path string) (int, map[string]any, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1"+path, nil))
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("%s: %v: %q", path, err, rec.Body.String())
	}
	return rec.Code, m, rec.Header()
}

// TestAPI checks every document: served as JSON with the security
// headers, the same fields as the client's values encoded by EncodeJSON,
// and unavailable counters null with their reason, never zero.
func TestAPI(t *testing.T) {
	p, _ := startProvider(t, 20*time.Millisecond)
	s, c := newServer(t, p.Path(), web.Options{Interval: 20 * time.Millisecond})
	h := s.Handler()

	// One sample: no rates yet; a request waits (two intervals at most)
	// and then says so.
	code, m, _ := getJSON(t, h, "/api/stats")
	if code != http.StatusServiceUnavailable || !strings.Contains(m["error"].(string), "first sample") {
		t.Fatalf("stats after one sample: %d %v", code, m)
	}
	waitProducerSample(t, p)
	s.Sample()

	for _, ep := range []string{"/api/", "/api/status", "/api/stats", "/api/sections", "/api/outliers", "/api/query?metric=page-faults&top=3"} {
		code, m, hdr := getJSON(t, h, ep)
		if code != http.StatusOK {
			t.Errorf("%s: %d %v", ep, code, m)
		}
		if ct := hdr.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: content type %q", ep, ct)
		}
		if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", ep, csp)
		}
	}
	// The cgroups document is a list (kushm stats --by cgroup -o json).
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/api/cgroups", nil))
	var cgs []map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &cgs); rec.Code != http.StatusOK || err != nil {
		t.Errorf("/api/cgroups: %d %v %s", rec.Code, err, rec.Body.Bytes())
	}
	// The region has no syscalls table entries yet, but has the table.
	if code, m, _ := getJSON(t, h, "/api/syscalls"); code != http.StatusOK || m["syscalls"] == nil {
		t.Errorf("syscalls: %d %v", code, m)
	}

	// Same fields as the client's document.
	_, status, _ := getJSON(t, h, "/api/status")
	var want map[string]any
	st := c.Status()
	b, _ := json.Marshal(&st)
	json.Unmarshal(b, &want)
	for k := range want {
		if _, ok := status[k]; !ok {
			t.Errorf("/api/status lacks %q", k)
		}
	}
	if status["path"] != p.Path() || status["state"] != "running" {
		t.Errorf("status: %v", status)
	}

	// Counters this machine cannot count: null in the sections document
	// and in the stats, with a reason in the status.
	_, secs, _ := getJSON(t, h, "/api/sections")
	reasons := map[string]string{}
	for _, u := range status["unavailable"].([]any) {
		u := u.(map[string]any)
		reasons[u["name"].(string)] = u["reason"].(string)
	}
	checked := 0
	for _, sec := range secs["sections"].([]any) {
		sec := sec.(map[string]any)
		if sec["name"] != "pmu" {
			continue
		}
		cols := sec["columns"].([]any)
		for _, row := range sec["rows"].([]any) {
			vals := row.(map[string]any)["values"].([]any)
			for i, v := range vals {
				name := cols[i].(map[string]any)["name"].(string)
				if _, na := reasons[name]; na {
					checked++
					if v != nil {
						t.Errorf("pmu %s is unavailable (%s) but reads %v", name, reasons[name], v)
					}
				}
			}
		}
	}
	t.Logf("%d unavailable pmu cells checked null", checked)

	// Bad parameters are refused with the cause.
	if code, m, _ := getJSON(t, h, "/api/query?metric=nonsense"); code != http.StatusBadRequest || !strings.Contains(m["error"].(string), "unknown metric") {
		t.Errorf("bad metric: %d %v", code, m)
	}
	if code, _, _ := getJSON(t, h, "/api/query?top=-1"); code != http.StatusBadRequest {
		t.Errorf("bad top: %d", code)
	}
}

// TestReadOnlyAndHost: only GET and HEAD; a loopback server refuses a
// foreign Host (DNS rebinding).
func TestReadOnlyAndHost(t *testing.T) {
	p, _ := startProvider(t, 20*time.Millisecond)
	s, _ := newServer(t, p.Path(), web.Options{Interval: 20 * time.Millisecond})
	ln, warn, err := web.Listen("127.0.0.1:0")
	if err != nil || warn != "" {
		t.Fatalf("listen: %v %q", err, warn)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	base := "http://" + ln.Addr().String()
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		req, _ := http.NewRequest(m, base+"/api/status", strings.NewReader("x"))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s: %d", m, res.StatusCode)
		}
	}
	req, _ := http.NewRequest("GET", base+"/api/status", nil)
	req.Host = "attacker.example:80"
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("foreign Host: %d", res.StatusCode)
	}
	res, err = http.Get(strings.Replace(base, "127.0.0.1", "localhost", 1) + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "/assets/app.js") {
		t.Errorf("page: %d", res.StatusCode)
	}
}

// TestPageHasNoInlineCode: the page's scripts and styles are files, so
// the CSP can forbid inline ones; nothing is loaded from another origin.
func TestPageHasNoInlineCode(t *testing.T) {
	p, _ := startProvider(t, 20*time.Millisecond)
	s, _ := newServer(t, p.Path(), web.Options{})
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/", nil))
	page := rec.Body.String()
	for _, re := range []string{`<script(?:\s[^>]*)?>\s*[^<\s]`, `<style`, `\sstyle=`, `\son[a-z]+=`, `javascript:`, `(?:src|href)="(?:https?:)?//`} {
		if m := regexp.MustCompile(re).FindString(page); m != "" {
			t.Errorf("page has %q (matches %s)", m, re)
		}
	}
	for _, src := range regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1) {
		if strings.HasPrefix(src[1], "data:") || !strings.HasPrefix(src[1], "/assets/") {
			continue
		}
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1"+src[1], nil))
		if rec.Code != 200 || rec.Body.Len() == 0 {
			t.Errorf("%s: %d, %d bytes", src[1], rec.Code, rec.Body.Len())
		}
	}
	// The script builds the DOM without innerHTML.
	js, _ := os.ReadFile("assets/app.js")
	if strings.Contains(string(js), ".innerHTML") || strings.Contains(string(js), "eval(") {
		t.Error("app.js uses innerHTML or eval")
	}
	// uPlot's license travels with it.
	if lic, err := os.ReadFile("assets/vendor/uPlot.LICENSE"); err != nil || !strings.Contains(string(lic), "MIT") {
		t.Errorf("uPlot license: %v", err)
	}
}

// TestListen: an address without a host binds loopback; a non-loopback
// one warns, naming what it exposes.
func TestListen(t *testing.T) {
	for _, addr := range []string{":0", "0"} {
		ln, warn, err := web.Listen(addr)
		if err != nil {
			t.Fatal(err)
		}
		if !web.IsLoopback(ln.Addr()) || warn != "" {
			t.Errorf("%q: bound %v, warning %q", addr, ln.Addr(), warn)
		}
		ln.Close()
	}
	ln, warn, err := web.Listen("0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if !strings.Contains(warn, "not a loopback address") || !strings.Contains(warn, "per-CPU") || !strings.Contains(warn, "processes") {
		t.Errorf("warning: %q", warn)
	}
	if _, _, err := web.Listen("256.0.0.1:0"); err == nil {
		t.Error("bad address accepted")
	}
	var _ net.Listener = ln
}

// TestStoppedProducer: the status document says stopped once the
// producer stops.
func TestStoppedProducer(t *testing.T) {
	p, stop := startProvider(t, 20*time.Millisecond)
	s, _ := newServer(t, p.Path(), web.Options{Interval: 20 * time.Millisecond})
	stop()
	s.Sample()
	_, m, _ := getJSON(t, s.Handler(), "/api/status")
	if m["state"] != "stopped" {
		t.Fatalf("state after stop: %v", m["state"])
	}
}

// TestReopen: with Options.Reopen the server follows a restarted
// producer: the stopped region is shown stopped, the successor's region
// (same path, a new file) is read once it is live, rates start again,
// and /metrics is rebuilt for it. (A daemon restarted on its own stale
// file adopts it: the mapping stays valid and needs no re-open.)
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kushm")
	start := func() (*provider.Provider, func()) {
		p, err := provider.New(provider.Config{Path: path, Interval: 20 * time.Millisecond, Watch: provider.Watch{None: true}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { p.Run(ctx); close(done) }()
		return p, func() { cancel(); <-done; p.Close() }
	}
	_, stopA := start()
	c, err := client.Open(client.Options{Path: path, AllowStale: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var opened []*client.Client
	s := web.New(c, web.Options{Interval: 20 * time.Millisecond,
		Metrics: func(c *client.Client) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, "created %d\n", c.Status().Created.UnixNano())
			})
		},
		Reopen: func() (*client.Client, error) {
			c, err := client.Open(client.Options{Path: path})
			if err == nil {
				opened = append(opened, c)
			}
			return c, err
		}})
	h := s.Handler()
	metrics := func() string {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/metrics", nil))
		return rec.Body.String()
	}
	_, st0, _ := getJSON(t, h, "/api/status")
	m0 := metrics()
	stopA()
	s.Sample()
	if _, st, _ := getJSON(t, h, "/api/status"); st["state"] != "stopped" || len(opened) != 0 {
		t.Fatalf("after the producer stopped: %v (re-opened %d)", st["state"], len(opened))
	}
	// A successor that cannot adopt the old file (here: it is gone)
	// creates a new one at the same path.
	os.Remove(path)
	os.Remove(path + ".ctl")
	pB, stopB := start()
	defer stopB()
	s.Sample()
	_, st1, _ := getJSON(t, h, "/api/status")
	if st1["state"] != "running" || st1["created"] == st0["created"] || len(opened) != 1 {
		t.Fatalf("after the restart: state %v, created %v (was %v), re-opened %d", st1["state"], st1["created"], st0["created"], len(opened))
	}
	if code, m, _ := getJSON(t, h, "/api/stats"); code != http.StatusServiceUnavailable {
		t.Errorf("rates across two regions: %d %v", code, m)
	}
	if m1 := metrics(); m1 == m0 {
		t.Errorf("/metrics not rebuilt: %q", m1)
	}
	waitProducerSample(t, pB)
	s.Sample()
	if code, _, _ := getJSON(t, h, "/api/stats"); code != http.StatusOK {
		t.Errorf("stats of the new region: %d", code)
	}
}
