package web_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kushm/kushm/userside/web"
)

// BenchmarkAPIStats is one /api/stats request through the handler: the
// cost a polling client adds (the document is encoded once per sample,
// not per request).
func BenchmarkAPIStats(b *testing.B) {
	p, _ := startProvider(b, 10*time.Millisecond)
	s, _ := newServer(b, p.Path(), web.Options{Interval: 10 * time.Millisecond})
	time.Sleep(30 * time.Millisecond)
	s.Sample()
	h := s.Handler()
	req := httptest.NewRequest("GET", "http://127.0.0.1/api/stats", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}

// BenchmarkSample is one read of the region by the server: every
// document (status, stats, sections, syscalls, cgroups, outliers) of a
// sample, encoded.
func BenchmarkSample(b *testing.B) {
	p, _ := startProvider(b, 10*time.Millisecond)
	s, _ := newServer(b, p.Path(), web.Options{Interval: time.Hour})
	b.ReportAllocs()
	for b.Loop() {
		s.Sample()
	}
}
