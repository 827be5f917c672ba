package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kushm/kushm/userside/web"
)

// TestLoad: 200 concurrent clients poll /api back to back for 10 s
// against a loopback server of a live provider's region. No request may
// fail, the heap must stay bounded, and the provider must keep its
// interval: the region's heartbeat age, watched every 20 ms, stays under
// two intervals. The interval is 1 s, kushm serve's default (not the
// 10 ms of other tests): the CI machine has two CPUs, shared by the
// provider, the server and the 200 clients, all in this process (with
// 250 ms, on this 2-vCPU VM at load average 16 from parallel builds, the
// age reached 526 ms: one missed tick).
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("10 s of load")
	}
	const (
		clients  = 200
		duration = 10 * time.Second
		interval = time.Second
	)
	p, _ := startProvider(t, interval)
	s, c := newServer(t, p.Path(), web.Options{Interval: interval})
	ln, _, err := web.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	defer func() { cancel(); <-served }()
	base := "http://" + ln.Addr().String()

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap0 := ms.HeapInuse

	// The watcher: heartbeat age and heap, every 20 ms.
	var maxAge time.Duration
	var maxHeap uint64
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stopWatch:
				return
			case <-tk.C:
			}
			if age := c.Status().HeartbeatAge; age > maxAge {
				maxAge = age
			}
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			maxHeap = max(maxHeap, m.HeapInuse)
		}
	}()

	paths := []string{"/api/stats", "/api/status", "/api/sections", "/api/syscalls", "/api/outliers", "/api/query?metric=page-faults&top=5"}
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var requests, failures atomic.Int64
	var firstErr atomic.Value
	end := time.Now().Add(duration)
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for n := i; time.Now().Before(end); n++ {
				res, err := hc.Get(base + paths[n%len(paths)])
				if err == nil {
					_, err = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if err == nil && res.StatusCode != http.StatusOK {
						err = fmt.Errorf("%s: HTTP %d", paths[n%len(paths)], res.StatusCode)
					}
				}
				requests.Add(1)
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}(i)
	}
	wg.Wait()
	close(stopWatch)
	<-watched

	t.Logf("%d requests in %v (%.0f/s) from %d clients; heartbeat age at most %v (interval %v); heap in use %.1f MiB before, at most %.1f MiB",
		requests.Load(), duration, float64(requests.Load())/duration.Seconds(), clients, maxAge.Round(time.Millisecond), interval,
		float64(heap0)/(1<<20), float64(maxHeap)/(1<<20))
	if f := failures.Load(); f > 0 {
		t.Errorf("%d of %d requests failed; first: %v", f, requests.Load(), firstErr.Load())
	}
	if maxAge >= 2*interval {
		t.Errorf("the provider's heartbeat aged %v under load, two intervals are %v", maxAge, 2*interval)
	}
	// Bounded: the documents are encoded once per sample, so the heap is
	// the connections' buffers and the documents, whatever the request
	// count.
	if maxHeap > heap0+128<<20 {
		t.Errorf("heap grew from %d to %d bytes under load", heap0, maxHeap)
	}
	if requests.Load() < clients {
		t.Errorf("only %d requests", requests.Load())
	}
}
