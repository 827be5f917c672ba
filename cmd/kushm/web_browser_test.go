package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/sys"
	"github.com/kushm/kushm/pmu"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/userside/bpfrt"
	"github.com/kushm/kushm/userside/provider"
)

// browserInterval is the sampling and page interval of the browser
// tests: long enough that Chromium, the server and the producer share
// the two CPUs of the CI machine without missing intervals.
const browserInterval = 250 * time.Millisecond

// chromiumPath finds Chromium, or skips the test saying so.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium on this machine (Debian package chromium, listed in .ci/packages.txt): browser tests skipped")
	return ""
}

// Rates the scripted producer writes, per CPU: page faults per second and
// busy share.
var (
	scriptFaults = []float64{1500, 4200}
	scriptBusy   = []float64{0.25, 0.75}
)

// scriptedProducer lays out the daemon's region and fills it with known,
// constant rates (page faults and busy time per CPU) every interval, so
// that what the page, /api and `kushm stats` show can be compared
// exactly; PAPI_L3_TCM is declared unavailable with a reason. Stop marks
// the region stopped.
type scriptedProducer struct {
	r    *shm.Region
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

const scriptReason = "the test's scripted producer does not count it"

func startScripted(t *testing.T) (string, *scriptedProducer) {
	t.Helper()
	info := string(abi.AppendInfoEntry(abi.AppendInfoNote(nil, "scripted by the browser test"), abi.InfoEntry{
		What: pmu.PAPI_L3_TCM.String(), Source: abi.InfoSourceConfig, Kind: abi.InfoKindNotAvailable, Cause: scriptReason}))
	l, err := provider.Layout(2, 64, info)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kushm")
	r, err := shm.Create(path, l, shm.CreateOptions{GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	pmuA, err := atomicarr.Open(r, abi.SecNamePMU)
	if err != nil {
		t.Fatal(err)
	}
	timeA, err := atomicarr.Open(r, abi.SecNameCPUTime)
	if err != nil {
		t.Fatal(err)
	}
	// Syscall latencies through the userspace runtime's helper (what a
	// BPF program calling bpf_kushm_record_latency does): read(2) at
	// 2-52 µs, and every third tick one of 20 ms, an outlier once the
	// threshold exists.
	k, err := bpfrt.NewRegionKushm(r)
	if err != nil {
		t.Fatal(err)
	}
	sysw, err := rcuhash.OpenWriter(r, abi.SecNameSyscalls)
	if err != nil {
		t.Fatal(err)
	}
	k.SetSyscallWriter(sysw)
	p := &scriptedProducer{r: r, stop: make(chan struct{}), done: make(chan struct{})}
	start := time.Now()
	tick := 0
	write := func() {
		tick++
		for i := 0; i < 40; i++ {
			lat := uint64(2000 + i*997%50000)
			if i == 0 && tick%3 == 0 && tick > 6 {
				lat = 20_000_000
			}
			if _, err := k.RecordLatency(0, lat); err != nil {
				t.Errorf("record latency: %v", err)
			}
		}
		el := time.Since(start)
		now := monoNow()
		for cpu := 0; cpu < 2; cpu++ {
			vals := make([]uint64, pmu.NumPresets)
			vals[pmu.SW_PAGE_FAULTS] = uint64(scriptFaults[cpu] * el.Seconds())
			vals[pmu.SW_TASK_CLOCK] = uint64(el)
			pmuA.Update(cpu, now, 1<<pmu.SW_PAGE_FAULTS|1<<pmu.SW_TASK_CLOCK, vals)
			tv := make([]uint64, abi.NumCPUTime)
			share := func(f float64) uint64 { return uint64(f * float64(el)) }
			sys, wait, steal := scriptBusy[cpu]/5, 0.02*float64(cpu+1), 0.01*float64(cpu+1)
			tv[abi.CPUTimeBusy] = share(scriptBusy[cpu])
			tv[abi.CPUTimeUser], tv[abi.CPUTimeSystem] = share(scriptBusy[cpu]-sys), share(sys)
			tv[abi.CPUTimeIOWait], tv[abi.CPUTimeSteal] = share(wait), share(steal)
			tv[abi.CPUTimeIdle] = share(1 - scriptBusy[cpu] - wait - steal)
			timeA.Update(cpu, now, 1<<abi.NumCPUTime-1, tv)
		}
		r.Heartbeat()
	}
	write()
	go func() {
		defer close(p.done)
		tk := time.NewTicker(browserInterval / 2)
		defer tk.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tk.C:
				write()
			}
		}
	}()
	t.Cleanup(func() { p.Stop(); r.Close() })
	return path, p
}

// Stop stops writing and marks the region stopped.
func (p *scriptedProducer) Stop() {
	p.once.Do(func() {
		close(p.stop)
		<-p.done
		p.r.Stop()
	})
}

// monoNow is CLOCK_MONOTONIC in ns, the clock of the rows' time stamps.
func monoNow() uint64 { return sys.MonotonicNs() }

// browserLog collects what the page must not produce: console errors,
// uncaught exceptions, failed requests and error responses.
type browserLog struct {
	mu       sync.Mutex
	problems []string
	requests int
}

func (b *browserLog) add(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, fmt.Sprintf(format, args...))
}

func (b *browserLog) take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.problems
	b.problems = nil
	return p
}

func (b *browserLog) listen(t *testing.T, ctx context.Context) {
	err := chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if typ := string(e.Type); typ == "error" || typ == "warning" || typ == "assert" {
				var args []string
				for _, a := range e.Args {
					args = append(args, fmt.Sprint(a.Value)+a.Description)
				}
				b.add("console.%s: %s", e.Type, strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			desc := d.Text
			if d.Exception != nil {
				desc += " " + d.Exception.Description
			}
			b.add("exception: %s", desc)
		case *cdplog.EventEntryAdded:
			if lv := e.Entry.Level; lv == cdplog.EntryLevelError || lv == cdplog.EntryLevelWarning {
				b.add("log %s (%s): %s %s", e.Entry.Level, e.Entry.Source, e.Entry.Text, e.Entry.URL)
			}
		case *network.EventLoadingFailed:
			b.add("request failed: %s (%s)", e.ErrorText, e.BlockedReason)
		case *network.EventResponseReceived:
			b.mu.Lock()
			b.requests++
			b.mu.Unlock()
			if e.Response.Status >= 400 {
				b.add("HTTP %d: %s", e.Response.Status, e.Response.URL)
			}
		}
	})
	if err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
}

// newBrowser starts headless Chromium for the test.
func newBrowser(t *testing.T) (context.Context, *browserLog) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // root in CI
		chromedp.DisableGPU,
		chromedp.WindowSize(1400, 1700),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); acancel() })
	bl := &browserLog{}
	bl.listen(t, ctx)
	return ctx, bl
}

// eval evaluates a JavaScript expression in the page, with a time-out.
func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(cctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %.60q: %v", js, err)
	}
	return v
}

// waitUpdates waits until the page has updated at least n times.
func waitUpdates(t *testing.T, ctx context.Context, n int) int {
	t.Helper()
	deadline := time.Now().Add(time.Duration(n+20) * browserInterval * 4)
	for {
		got, _ := strconv.Atoi(eval[string](t, ctx, `document.body.dataset.updates`))
		if got >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page updated %d times, want %d", got, n)
		}
		time.Sleep(browserInterval / 2)
	}
}

// plotPixels is what the page's plots drew: per plot, the canvas size
// and the pixels in the colour of each CPU's line.
type plotPixels struct {
	Key    string `json:"key"`
	W      int    `json:"w"`
	H      int    `json:"h"`
	Series []int  `json:"series"`
}

const readPlotsJS = `(() => {
  const colors = [[0x24,0x56,0xa6],[0xd1,0x49,0x5b]];
  return [...document.querySelectorAll('.plot')].map((p) => {
    const c = p.querySelector('canvas');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const n = colors.map(() => 0);
    for (let i = 0; i < d.length; i += 4) {
      colors.forEach((k, j) => {
        if (d[i+3] > 200 && Math.abs(d[i]-k[0]) < 24 && Math.abs(d[i+1]-k[1]) < 24 && Math.abs(d[i+2]-k[2]) < 24) n[j]++;
      });
    }
    return {key: p.dataset.key, w: c.width, h: c.height, series: n};
  });
})()`

// cellRate reads the rate the page's per-CPU table shows for cpu and
// metric, with the sample it belongs to.
func cellRate(t *testing.T, ctx context.Context, cpu int, metric string) (rate float64, text string, sample string) {
	t.Helper()
	type cell struct {
		Rate   string `json:"rate"`
		Text   string `json:"text"`
		Sample string `json:"sample"`
	}
	js := fmt.Sprintf(`(() => { const td = document.querySelector('#cpu-table tr[data-cpu="%d"] td[data-metric="%s"]');
	  return td ? {rate: td.dataset.rate, text: td.textContent, sample: document.querySelector('#cpu-table').dataset.sample} : null; })()`, cpu, metric)
	res := eval[*cell](t, ctx, js)
	if res == nil {
		t.Fatalf("no cell for cpu %d %s", cpu, metric)
	}
	r, err := strconv.ParseFloat(res.Rate, 64)
	if err != nil {
		t.Fatalf("cpu %d %s: rate %q (%q)", cpu, metric, res.Rate, res.Text)
	}
	return r, res.Text, res.Sample
}

// statsDoc is what the browser test reads of a stats document.
type statsDoc struct {
	CPUs []struct {
		CPU    int      `json:"cpu"`
		Metric string   `json:"metric"`
		Rate   *float64 `json:"rate_per_s"`
	} `json:"cpus"`
	CPUTime []struct {
		CPU  int      `json:"cpu"`
		Busy *float64 `json:"busy_percent"`
	} `json:"cpu_time"`
}

func near(a, b, rel float64) bool { return math.Abs(a-b) <= rel*math.Max(math.Abs(a), math.Abs(b)) }

// TestBrowser drives the page in headless Chromium against `kushm web`
// serving a scripted producer's region: it loads with no console error
// and no failed request, every plot is drawn, a CPU's numbers match /api
// and `kushm stats -o json`, an unavailable counter shows its reason, the
// page keeps updating, and a stopped producer is shown as stopped. The
// screenshot is kept in the test's artifact directory (go test
// -artifacts).
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	ctx, bl := newBrowser(t)
	region, prod := startScripted(t)
	addr := freeAddr(t)
	startCmd(t, "web", "--region", region, "--listen", addr, "--interval", browserInterval.String())
	base := "http://" + addr
	waitOK(t, base, "/api/status")

	if _, err := chromedp.Run(ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	first := waitUpdates(t, ctx, 3)
	if p := bl.take(); len(p) > 0 {
		t.Errorf("page load: %s", strings.Join(p, "\n"))
	}

	// Every plot drawn: a canvas of real size with both CPUs' lines.
	plots := eval[[]plotPixels](t, ctx, readPlotsJS)
	keys := map[string]bool{}
	for _, p := range plots {
		keys[p.Key] = true
		if p.W < 200 || p.H < 100 || len(p.Series) != 2 || p.Series[0] < 20 || p.Series[1] < 20 {
			t.Errorf("plot %s: %dx%d, line pixels per CPU %v", p.Key, p.W, p.H, p.Series)
		}
	}
	for _, k := range []string{"cputime/busy", "cputime/idle", "pmu/SW_PAGE_FAULTS"} {
		if !keys[k] {
			t.Errorf("no plot of %s (plots: %v)", k, keys)
		}
	}
	if keys["pmu/SW_TASK_CLOCK"] || keys["pmu/PAPI_L3_TCM"] {
		t.Errorf("task-clock (with busy time) or an unavailable counter plotted: %v", keys)
	}

	// The numbers of a CPU: the page's cell, /api/stats of the same
	// sample, and kushm stats -o json measured now, within one interval:
	// the scripted rates are constant, so all three agree.
	for cpu := 0; cpu < 2; cpu++ {
		busy, busyText, _ := cellRate(t, ctx, cpu, "busy")
		faults, faultsText, sample := cellRate(t, ctx, cpu, "page-faults")
		if !near(busy, scriptBusy[cpu]*100, 0.05) || !near(faults, scriptFaults[cpu], 0.05) {
			t.Errorf("page, cpu %d: busy %v (%q), page faults %v (%q); scripted %v%%, %v/s",
				cpu, busy, busyText, faults, faultsText, scriptBusy[cpu]*100, scriptFaults[cpu])
		}
		if want := fmt.Sprintf("%.1f%%", busy); busyText != want {
			t.Errorf("busy cell shows %q, want %q", busyText, want)
		}
		// The same sample's document, as the page read it.
		_, api, err := httpGet(base, "/api/stats")
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := run([]string{"stats", "--region", region, "-o", "json", "--interval", browserInterval.String()}, &out); err != nil {
			t.Fatal(err)
		}
		for name, b := range map[string][]byte{"kushm stats -o json": out.Bytes(), "/api/stats (sample " + sample + ")": api} {
			var d statsDoc
			if err := json.Unmarshal(b, &d); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			found := 0
			for _, c := range d.CPUs {
				if c.CPU == cpu && c.Metric == "page-faults" && c.Rate != nil {
					found++
					if !near(*c.Rate, faults, 0.05) {
						t.Errorf("%s cpu %d page faults %v/s, the page shows %v/s", name, cpu, *c.Rate, faults)
					}
				}
			}
			for _, c := range d.CPUTime {
				if c.CPU == cpu && c.Busy != nil {
					found++
					if !near(*c.Busy, busy, 0.05) {
						t.Errorf("%s cpu %d busy %v%%, the page shows %v%%", name, cpu, *c.Busy, busy)
					}
				}
			}
			if found != 2 {
				t.Errorf("%s: cpu %d lacks page faults or busy time: %s", name, cpu, b)
			}
		}
	}

	// Syscall latency: the table row of read(2), its distribution drawn
	// in the heatmap, and (once a threshold exists) outliers streamed.
	if row := eval[string](t, ctx, `(document.querySelector('#syscalls tr[data-nr="0"]') || {textContent: ''}).textContent`); !strings.HasPrefix(row, "read") {
		t.Errorf("syscall table row of read: %q", row)
	}
	heatPixels := eval[int](t, ctx, `(() => { const c = document.getElementById('heatmap'); if (c.hidden) return -1;
	  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
	  for (let i = 0; i < d.length; i += 4) if (d[i+3] > 20 && d[i+2] > d[i] + 40) n++; return n; })()`)
	if heatPixels < 100 {
		t.Errorf("heatmap: %d drawn pixels", heatPixels)
	}

	// The unavailable counter: listed with its reason, not plotted, not 0.
	reasons := eval[string](t, ctx, `document.getElementById('unavailable').textContent`)
	if !strings.Contains(reasons, "PAPI_L3_TCM: not available on this machine, because "+scriptReason) {
		t.Errorf("reasons shown: %q", reasons)
	}
	unmeasured := eval[string](t, ctx, `(document.querySelector('[data-unmeasured="PAPI_L3_TCM"]') || {textContent: ''}).textContent`)
	if !strings.Contains(unmeasured, scriptReason) || !strings.Contains(unmeasured, "n/a") {
		t.Errorf("unmeasured PAPI_L3_TCM: %q", unmeasured)
	}

	// Keeps updating: five more intervals, with new points in the plots.
	countX := `+(document.querySelector('.plot[data-key="cputime/busy"]') || {dataset: {points: -1}}).dataset.points`
	x0 := eval[int](t, ctx, countX)
	x1 := x0
	for deadline := time.Now().Add(40 * browserInterval); x1 < x0+5 && time.Now().Before(deadline); {
		time.Sleep(browserInterval)
		x1 = eval[int](t, ctx, countX)
	}
	n := waitUpdates(t, ctx, first+5)
	if x1 < x0+5 {
		t.Errorf("the busy plot went from %d to %d points in %v", x0, x1, 40*browserInterval)
	}
	outliers := ""
	for deadline := time.Now().Add(40 * browserInterval); time.Now().Before(deadline); time.Sleep(browserInterval) {
		if outliers = eval[string](t, ctx, `document.getElementById('outliers').textContent`); strings.Contains(outliers, "read") {
			break
		}
	}
	if !strings.Contains(outliers, "read") || !strings.Contains(outliers, "20.00 ms") {
		t.Errorf("outlier stream: %q", outliers)
	}
	stateJS := `document.getElementById('state').dataset.state`
	state := eval[string](t, ctx, stateJS)
	if state != "running" {
		t.Errorf("state while producing: %q", state)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	keepScreenshot(t, "web-scripted.png", shot, false)

	// A stopped producer is shown as stopped.
	prod.Stop()
	deadline := time.Now().Add(20 * browserInterval)
	for state != "stopped" && time.Now().Before(deadline) {
		time.Sleep(browserInterval / 2)
		state = eval[string](t, ctx, stateJS)
	}
	if state != "stopped" {
		t.Errorf("state after the producer stopped: %q", state)
	}
	if p := bl.take(); len(p) > 0 {
		t.Errorf("while updating: %s", strings.Join(p, "\n"))
	}
	bl.mu.Lock()
	t.Logf("%d responses, %d page updates", bl.requests, n)
	bl.mu.Unlock()
}

// keepScreenshot writes a screenshot of the page to the test's artifact
// directory (go test -artifacts -outputdir DIR keeps it), and the
// README's one also to KUSHM_SCREENSHOT when set (make web-screenshot
// refreshes docs/web.png so).
func keepScreenshot(t *testing.T, name string, png []byte, readme bool) {
	t.Helper()
	p := filepath.Join(t.ArtifactDir(), name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Error(err)
	}
	t.Logf("screenshot: %s", p)
	if dst := os.Getenv("KUSHM_SCREENSHOT"); dst != "" && readme {
		if err := os.WriteFile(dst, png, 0o644); err != nil {
			t.Error(err)
		}
	}
}

// TestBrowserDaemon: the page of `kushm serve --listen`, filled by the
// real provider watching this user's processes, loads with no console
// error or failed request and draws its plots; its screenshot is the
// README's.
func TestBrowserDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	ctx, bl := newBrowser(t)
	addr := freeAddr(t)
	region := filepath.Join(t.TempDir(), "kushm")
	startCmd(t, "serve", "--region", region, "--interval", browserInterval.String(), "--proc-interval", browserInterval.String(),
		"--listen", addr, "--no-gops", "--uid", strconv.Itoa(os.Getuid()))
	base := "http://" + addr
	waitOK(t, base, "/api/stats")
	if _, err := chromedp.Run(ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	// Enough points for lines, and a process table.
	waitUpdates(t, ctx, 8)
	if p := bl.take(); len(p) > 0 {
		t.Errorf("page of kushm serve --listen: %s", strings.Join(p, "\n"))
	}
	plots := eval[[]plotPixels](t, ctx, readPlotsJS)
	if len(plots) == 0 {
		t.Fatal("no plot")
	}
	for _, p := range plots {
		// Real CPUs may run at the same rate, one line over the other.
		if p.W < 200 || p.H < 100 || p.Series[0]+p.Series[1] < 20 {
			t.Errorf("plot %s: %dx%d, line pixels per CPU %v", p.Key, p.W, p.H, p.Series)
		}
	}
	if state := eval[string](t, ctx, `document.getElementById('state').dataset.state`); state != "running" {
		t.Errorf("state: %q", state)
	}
	// The server samples at the producer's pace: an interval in which
	// the producer wrote nothing must not blank the table.
	for i := 0; i < 6; i++ {
		for cpu := 0; cpu < min(2, goruntime.NumCPU()); cpu++ {
			if busy, text, _ := cellRate(t, ctx, cpu, "busy"); busy < 0 || busy > 150 {
				t.Errorf("cpu %d busy %v (%q)", cpu, busy, text)
			}
		}
		time.Sleep(browserInterval / 2)
	}
	full, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	keepScreenshot(t, "web-full.png", full, false)
	// The README's: the first screen (1400x1700).
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	keepScreenshot(t, "web.png", shot, true)
}
