package web

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/userside/client"
)

//go:embed assets
var assets embed.FS

// Options configure a Server.
type Options struct {
	// Interval is how often the region is read (default 1 s; at least
	// 10 ms). The page polls at the same period.
	Interval time.Duration
	// Metrics, when set, makes the handler of /metrics (the Prometheus
	// endpoint) for a client; it is called again with each re-opened one.
	Metrics func(*client.Client) http.Handler
	// Reopen, when set, is called while the producer is stopped or dead
	// to open its successor's region (a restarted daemon creates a new
	// file; a reloaded module a new device). It should fail while no
	// live producer is there (client.Open without AllowStale does). The
	// server closes the clients it re-opened; the one given to New stays
	// the caller's.
	Reopen func() (*client.Client, error)
	// MaxEntries bounds the hash entries per section of /api/sections
	// (default 64).
	MaxEntries int
	// MaxOutliers bounds the outlier events kept (default 200).
	MaxOutliers int
	// Cgroups names the cgroups of /api/cgroups (nil: by id).
	Cgroups client.CgroupNamer
}

// Server reads one region every interval and serves the page and its
// documents.
type Server struct {
	// mu guards c and metrics: the sampler swaps them (Reopen) under
	// the write lock; handlers that use them hold the read lock.
	mu       sync.RWMutex
	c        *client.Client
	orig     *client.Client // the caller's client (not closed here)
	metrics  http.Handler
	o        Options
	cur      atomic.Pointer[state]
	outliers []Outlier
	prevSys  map[uint32]client.SyscallStat
	seq      uint64
	// The cgroups read last with a change, when, and their document.
	cgPrev  []client.Cgroup
	cgPrevT time.Time
	cgDoc   doc
	// rated is closed once a sample has rates (the second one): until
	// then a stats or query request waits for it, at most two intervals.
	rated     chan struct{}
	ratedOnce sync.Once
	// loopbackOnly refuses non-loopback Host headers (set by Serve on a
	// loopback listener).
	loopbackOnly atomic.Bool
}

// state is everything one sample produced; it is immutable once
// published.
type state struct {
	seq    uint64
	docs   map[string]doc
	p0, p1 *client.CPUSample
	procs0 []client.Proc
	procs1 []client.Proc
	prErr  error
}

// doc is an encoded document, or the error that stands for it.
type doc struct {
	body   []byte
	status int
}

// New returns a server of the region c reads and takes its first sample.
func New(c *client.Client, o Options) *Server {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Interval < 10*time.Millisecond {
		o.Interval = 10 * time.Millisecond
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 64
	}
	if o.MaxOutliers <= 0 {
		o.MaxOutliers = 200
	}
	s := &Server{c: c, orig: c, o: o, rated: make(chan struct{})}
	if o.Metrics != nil {
		s.metrics = o.Metrics(c)
	}
	s.Sample()
	return s
}

// reopen replaces the client when its producer is gone and Reopen finds
// a live successor; it reports whether it did. Only the sampler calls it.
func (s *Server) reopen() bool {
	if s.o.Reopen == nil || s.c.CheckProducer() == nil {
		return false
	}
	nc, err := s.o.Reopen()
	if err != nil {
		return false
	}
	var mh http.Handler
	if s.o.Metrics != nil {
		mh = s.o.Metrics(nc)
	}
	s.mu.Lock()
	old := s.c
	s.c, s.metrics = nc, mh
	s.mu.Unlock()
	if old != s.orig {
		old.Close()
	}
	// Nothing of the old region is comparable with the new one.
	s.prevSys, s.cgPrev = nil, nil
	return true
}

// closeReopened closes the client Reopen gave, if any (Serve's end).
func (s *Server) closeReopened() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c != s.orig {
		s.c.Close()
		s.c = s.orig
	}
}

// Interval is the sampling period.
func (s *Server) Interval() time.Duration { return s.o.Interval }

// Run samples the region every interval until ctx is done.
func (s *Server) Run(ctx context.Context) {
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Sample()
		}
	}
}

// Outlier is one event of the outlier stream: syscalls that exceeded
// their threshold since the previous sample, from the outlier counts of
// the region's syscalls table (the `kushm outliers` stream needs the
// kernel tracker; this one needs only the region).
type Outlier struct {
	Time        time.Time `json:"time"`
	NR          uint32    `json:"nr"`
	Syscall     string    `json:"syscall"`
	New         uint64    `json:"new"`
	Outliers    uint64    `json:"outliers"`
	ThresholdNs uint64    `json:"threshold_ns"`
	LastNs      uint64    `json:"last_ns"`
	MaxNs       uint64    `json:"max_ns"`
}

// Outliers is the /api/outliers document, newest event last.
type Outliers struct {
	Events []Outlier `json:"events"`
}

// SyscallsDoc is the document of `kushm syscalls -o json` and
// /api/syscalls.
type SyscallsDoc struct {
	Kx100       uint64               `json:"kx100"`
	Warmup      uint64               `json:"warmup"`
	Mode        string               `json:"mode"`         // the global rule: k·σ, quantile, interp
	Qppm        uint32               `json:"qppm"`         // q·10^6 of the quantile rules
	FactorX1000 uint64               `json:"factor_x1000"` // their factor·1000
	DecayShift  uint32               `json:"decay_shift"`  // each CPU halves its window every 2^h samples
	Syscalls    []client.SyscallStat `json:"syscalls"`     // with their histograms (buckets)
}

// NewSyscallsDoc is the document of st under the global parameters p.
func NewSyscallsDoc(p client.SyscallParams, st []client.SyscallStat) *SyscallsDoc {
	if st == nil {
		st = []client.SyscallStat{}
	}
	return &SyscallsDoc{Kx100: p.Kx100, Warmup: p.Warmup, Mode: client.ModeName(p.Mode), Qppm: p.Qppm,
		FactorX1000: p.FactorX1000, DecayShift: p.DecayShift, Syscalls: st}
}

// ReadSyscalls reads the syscalls document of the region c reads.
func ReadSyscalls(c *client.Client) (*SyscallsDoc, error) {
	st, err := c.Syscalls()
	if err != nil {
		return nil, err
	}
	return NewSyscallsDoc(c.SyscallParams(), st), nil
}

// EncodeJSON writes v as the indented JSON document every -o json
// command and every /api endpoint writes.
func EncodeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

type apiError struct {
	Error string `json:"error"`
}

func encode(v any) doc {
	var b bytes.Buffer
	if err := EncodeJSON(&b, v); err != nil {
		return errDoc(http.StatusInternalServerError, err)
	}
	return doc{body: b.Bytes(), status: http.StatusOK}
}

func errDoc(status int, err error) doc {
	var b bytes.Buffer
	EncodeJSON(&b, apiError{err.Error()})
	return doc{body: b.Bytes(), status: status}
}

func statusFor(err error) int {
	if errors.Is(err, shm.ErrNoSection) || errors.Is(err, client.ErrNoSyscallTable) {
		return http.StatusNotFound
	}
	return http.StatusServiceUnavailable
}

// Sample reads the region once and publishes the documents of this
// sample. Run calls it every interval; it is exported for tests.
func (s *Server) Sample() {
	prev := s.cur.Load()
	if s.reopen() {
		prev = nil // rates start again with the new region
	}
	s.seq++
	st := &state{seq: s.seq, docs: map[string]doc{}}
	st.docs["status"] = encode(s.c.Status())
	st.docs["sections"] = encode(s.c.Decode(s.o.MaxEntries))

	p1, err := s.c.SamplePMU()
	if err != nil {
		st.docs["stats"] = errDoc(statusFor(err), err)
	} else {
		st.p1 = p1
		st.procs1, st.prErr = s.c.Processes()
		if prev != nil && prev.p1 != nil && sameRows(prev.p1, p1) && prev.p0 != nil {
			// The producer wrote nothing since the last sample (it
			// samples at our pace, or slower): keep the last rates
			// rather than publish an interval without data.
			st.p0, st.p1, st.procs0, st.procs1, st.prErr = prev.p0, prev.p1, prev.procs0, prev.procs1, prev.prErr
			st.docs["stats"] = prev.docs["stats"]
		} else if prev != nil && prev.p1 != nil {
			st.p0, st.procs0 = prev.p1, prev.procs1
			st.docs["stats"] = encode(s.c.Delta(st.p0, st.p1, st.procs0, st.procs1))
			defer s.ratedOnce.Do(func() { close(s.rated) })
		} else {
			st.docs["stats"] = errDoc(http.StatusServiceUnavailable,
				fmt.Errorf("first sample taken: rates after one interval (%v)", s.o.Interval))
		}
	}

	now := time.Now()
	s.sampleCgroups(st, now)
	if sc, err := ReadSyscalls(s.c); err != nil {
		st.docs["syscalls"] = errDoc(statusFor(err), err)
	} else {
		st.docs["syscalls"] = encode(sc)
		cur := make(map[uint32]client.SyscallStat, len(sc.Syscalls))
		for _, x := range sc.Syscalls {
			cur[x.NR] = x
			if p, ok := s.prevSys[x.NR]; ok && x.Outliers > p.Outliers {
				s.outliers = append(s.outliers, Outlier{Time: now, NR: x.NR, Syscall: x.Name,
					New: x.Outliers - p.Outliers, Outliers: x.Outliers, ThresholdNs: x.ThresholdNs, LastNs: x.LastNs, MaxNs: x.MaxNs})
			}
		}
		s.prevSys = cur
		if n := len(s.outliers) - s.o.MaxOutliers; n > 0 {
			s.outliers = append([]Outlier(nil), s.outliers[n:]...)
		}
	}
	ev := append([]Outlier{}, s.outliers...)
	st.docs["outliers"] = encode(Outliers{Events: ev})
	s.cur.Store(st)
}

// sampleCgroups makes the cgroups document: each cgroup's rates between
// the last two reads that differ (the producer copies the cgroups section
// at its own pace), highest CPU use first.
func (s *Server) sampleCgroups(st *state, now time.Time) {
	cg, err := s.c.Cgroups(s.o.Cgroups)
	switch {
	case err != nil:
		if why, ok := s.c.Why(abi.SecNameCgroups); ok {
			err = fmt.Errorf("%w: the producer counts no cgroups, because %s", err, why)
		}
		st.docs["cgroups"] = errDoc(statusFor(err), err)
		return
	case s.cgPrev == nil:
		s.cgDoc = encode([]client.CgroupStat{}) // no rates before a second read
	case !reflect.DeepEqual(cg, s.cgPrev):
		cs := client.CgroupDelta(s.cgPrev, cg, now.Sub(s.cgPrevT))
		sort.SliceStable(cs, func(i, j int) bool {
			a, b := -1.0, -1.0
			if cs[i].CPUPercent != nil {
				a = *cs[i].CPUPercent
			}
			if cs[j].CPUPercent != nil {
				b = *cs[j].CPUPercent
			}
			return a > b
		})
		s.cgDoc = encode(cs)
	default:
		st.docs["cgroups"] = s.cgDoc // nothing new: the last rates stay
		return
	}
	s.cgPrev, s.cgPrevT = cg, now
	st.docs["cgroups"] = s.cgDoc
}

// sameRows reports whether two samples hold the same producer samples
// (every row's time stamp unchanged).
func sameRows(a, b *client.CPUSample) bool {
	if len(a.Rows) != len(b.Rows) {
		return false
	}
	for i := range a.Rows {
		if a.Rows[i].TimeNs != b.Rows[i].TimeNs {
			return false
		}
	}
	return true
}

// endpoints are the documents under /api/, with what they are.
var endpoints = []struct{ Name, Command string }{
	{"status", "kushm status -o json"},
	{"stats", "kushm stats -o json"},
	{"query", "kushm query METRIC -o json (parameters: metric, top, cpu, pid)"},
	{"syscalls", "kushm syscalls -o json"},
	{"sections", "kushm dump -o json"},
	{"cgroups", "kushm stats --by cgroup -o json (all cgroups)"},
	{"outliers", "syscalls over their threshold, from the region's outlier counts"},
}

// securityHeaders are set on every response.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options": "nosniff",
	"Referrer-Policy":        "no-referrer",
	"X-Frame-Options":        "DENY",
}

// Handler serves the page, its assets, /api/ and /metrics.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	files := http.FileServerFS(static)
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", files))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		b, _ := assets.ReadFile("assets/index.html")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(b)
	})
	mux.HandleFunc("GET /api/{$}", func(w http.ResponseWriter, r *http.Request) {
		type ep struct {
			Path string `json:"path"`
			Same string `json:"same_as"`
		}
		var list []ep
		for _, e := range endpoints {
			list = append(list, ep{"/api/" + e.Name, e.Command})
		}
		d := encode(struct {
			Interval  time.Duration `json:"interval_ns"`
			Endpoints []ep          `json:"endpoints"`
		}{s.o.Interval, list})
		serveDoc(w, d, 0)
	})
	for _, e := range endpoints {
		if e.Name == "query" {
			continue
		}
		name := e.Name
		mux.HandleFunc("GET /api/"+name, func(w http.ResponseWriter, r *http.Request) {
			if name == "stats" {
				s.waitRated(r.Context())
			}
			st := s.cur.Load()
			serveDoc(w, st.docs[name], st.seq)
		})
	}
	mux.HandleFunc("GET /api/query", s.query)
	if s.o.Metrics != nil {
		mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
			s.mu.RLock()
			defer s.mu.RUnlock()
			s.metrics.ServeHTTP(w, r)
		})
	}
	return s.guard(mux)
}

// waitRated waits, at most two intervals, until a sample has rates.
func (s *Server) waitRated(ctx context.Context) {
	select {
	case <-s.rated:
		return
	default:
	}
	t := time.NewTimer(2 * s.o.Interval)
	defer t.Stop()
	select {
	case <-s.rated:
	case <-t.C:
	case <-ctx.Done():
	}
}

// guard sets the security headers, allows GET and HEAD only, and on a
// loopback listener refuses foreign Host headers.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for k, v := range securityHeaders {
			h.Set(k, v)
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "read-only: GET and HEAD only", http.StatusMethodNotAllowed)
			return
		}
		if s.loopbackOnly.Load() && !loopbackHost(r.Host) {
			http.Error(w, "this server answers loopback host names only (localhost, 127.0.0.1, [::1])", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func serveDoc(w http.ResponseWriter, d doc, seq uint64) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if seq != 0 {
		h.Set("X-Kushm-Sample", strconv.FormatUint(seq, 10))
	}
	if d.status == 0 {
		d = errDoc(http.StatusInternalServerError, errors.New("no document"))
	}
	w.WriteHeader(d.status)
	w.Write(d.body)
}

// query answers /api/query?metric=M&top=K&cpu=C&pid=P from the last two
// samples: the document of `kushm query M --top K -o json`.
func (s *Server) query(w http.ResponseWriter, r *http.Request) {
	s.waitRated(r.Context())
	st := s.cur.Load()
	q := r.URL.Query()
	bad := func(err error) { serveDoc(w, errDoc(http.StatusBadRequest, err), st.seq) }
	metric := q.Get("metric")
	if metric == "" {
		metric = "cache-misses"
	}
	id, err := client.ParseMetric(metric)
	if err != nil {
		bad(err)
		return
	}
	o := client.QueryOptions{Metric: id, CPU: -1}
	for _, p := range []struct {
		name string
		dst  *int
		min  int
	}{{"top", &o.Top, 0}, {"cpu", &o.CPU, -1}, {"pid", &o.PID, 0}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < p.min || n > 1<<22 {
				bad(fmt.Errorf("parameter %s=%q: want an integer >= %d", p.name, v, p.min))
				return
			}
			*p.dst = n
		}
	}
	if st.p0 == nil || st.p1 == nil {
		serveDoc(w, st.docs["stats"], st.seq)
		return
	}
	if o.CPU >= len(st.p1.Rows) {
		bad(fmt.Errorf("cpu %d: the region has CPUs 0..%d", o.CPU, len(st.p1.Rows)-1))
		return
	}
	s.mu.RLock()
	res := s.c.QueryDelta(o, st.p0, st.p1, st.procs0, st.procs1, st.prErr)
	s.mu.RUnlock()
	serveDoc(w, encode(res), st.seq)
}
