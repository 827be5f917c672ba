package rcuhash_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kushm/kushm/atomicarr"
	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/rcuhash"
	"github.com/kushm/kushm/shm"
)

// The stress setup: keys [0, permanent) are inserted once and never
// deleted (a reader must always find them); keys [permanent, total) are
// inserted and deleted all the time. Every value is self-validating: word
// 0 is the key, word 1 a generation, the rest a checksum of both.

const (
	permanent = 64
	churn     = 192
	valueSize = 64
)

func mkval(dst []byte, key, gen uint64) {
	binary.LittleEndian.PutUint64(dst[0:], key)
	binary.LittleEndian.PutUint64(dst[8:], gen)
	for w := 2; w < valueSize/8; w++ {
		binary.LittleEndian.PutUint64(dst[8*w:], abi.Hash(key^gen*uint64(w)))
	}
}

// checkval returns "" if v is a whole value of key.
func checkval(v []byte, key uint64) string {
	if k := binary.LittleEndian.Uint64(v[0:]); k != key {
		return fmt.Sprintf("false hit: asked %d, value of %d", key, k)
	}
	gen := binary.LittleEndian.Uint64(v[8:])
	for w := 2; w < valueSize/8; w++ {
		if binary.LittleEndian.Uint64(v[8*w:]) != abi.Hash(key^gen*uint64(w)) {
			return fmt.Sprintf("torn value of key %d gen %d at word %d", key, gen, w)
		}
	}
	return ""
}

func stressLayout() shm.Layout {
	spec, err := rcuhash.Spec("t", rcuhash.Geometry{Capacity: permanent + churn/2, ValueSize: valueSize}, nil)
	if err != nil {
		panic(err)
	}
	return shm.Layout{NCPUs: 2, ProducerKind: abi.ProducerApp, ProducerName: "stress", HeartbeatPeriod: 50 * time.Millisecond,
		Sections: []shm.SectionSpec{spec, atomicarr.Spec("arr", 2, 8, nil)}}
}

// writeLoop mutates the table and the array until stop, returning the
// number of updates.
func writeLoop(r *shm.Region, tab *rcuhash.Table, stop func() bool) uint64 {
	arr, err := atomicarr.Open(r, "arr")
	if err != nil {
		panic(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	v := make([]byte, valueSize)
	vals := make([]uint64, 8)
	var n, gen uint64
	populate(tab)
	for !stop() {
		for i := 0; i < 256; i++ {
			gen++
			switch op := rng.IntN(4); {
			case op < 2: // update a permanent key
				k := rng.Uint64N(permanent)
				mkval(v, k, gen)
				if err := tab.Update(k, 0, v); err != nil {
					panic(err)
				}
			case op == 2: // insert a churning key
				k := permanent + rng.Uint64N(churn)
				if !tab.Has(k) {
					mkval(v, k, gen)
					if err := tab.Insert(k, nil, v); err != nil && !errors.Is(err, shm.ErrFull) {
						panic(err)
					}
				}
			default: // delete a churning key
				k := permanent + rng.Uint64N(churn)
				if tab.Has(k) {
					if err := tab.Delete(k); err != nil {
						panic(err)
					}
				}
			}
			row := int(gen & 1)
			for s := range vals {
				vals[s] = gen*8 + uint64(s)
			}
			arr.Update(row, gen, 0xff, vals)
			n++
		}
		r.Heartbeat()
	}
	return n
}

// populate inserts the permanent keys (before any reader starts).
func populate(tab *rcuhash.Table) {
	v := make([]byte, valueSize)
	for k := uint64(0); k < permanent; k++ {
		if !tab.Has(k) {
			mkval(v, k, 0)
			if err := tab.Insert(k, nil, v); err != nil {
				panic(err)
			}
		}
	}
}

type readStats struct {
	lookups, hits, retries, bad, missed, snaps uint64
	firstBad                                   string
}

func (s readStats) String() string {
	return fmt.Sprintf("lookups=%d hits=%d retries=%d bad=%d missed=%d snapshots=%d %s",
		s.lookups, s.hits, s.retries, s.bad, s.missed, s.snaps, s.firstBad)
}

func readLoop(r *shm.Region, stop func() bool, seed uint64) readStats {
	tab, err := rcuhash.Open(r, "t")
	if err != nil {
		panic(err)
	}
	arr, err := atomicarr.Open(r, "arr")
	if err != nil {
		panic(err)
	}
	var st readStats
	rng := rand.New(rand.NewPCG(seed, 7))
	v := make([]byte, valueSize)
	var snap atomicarr.Snapshot
	fail := func(msg string) {
		st.bad++
		if st.firstBad == "" {
			st.firstBad = msg
		}
	}
	for !stop() {
		for i := 0; i < 1024; i++ {
			k := rng.Uint64N(permanent + churn)
			err := tab.Lookup(k, v)
			st.lookups++
			switch {
			case err == nil:
				st.hits++
				if msg := checkval(v, k); msg != "" {
					fail(msg)
				}
			case errors.Is(err, shm.ErrRetry):
				st.retries++
			case errors.Is(err, shm.ErrNotFound):
				if k < permanent {
					st.missed++ // a live key missed: a protocol violation
					fail(fmt.Sprintf("missed live key %d", k))
				}
			default:
				fail(err.Error())
			}
			if i%8 == 0 {
				if err := arr.Snapshot(int(k&1), &snap); err == nil && snap.TimeNs != 0 {
					st.snaps++
					base := snap.Vals[0]
					for s, x := range snap.Vals {
						if x != base+uint64(s) || base != snap.TimeNs*8 {
							fail(fmt.Sprintf("torn row: %v time %d", snap.Vals, snap.TimeNs))
							break
						}
					}
				}
			}
		}
	}
	return st
}

func stressDuration() time.Duration {
	if testing.Short() {
		return 300 * time.Millisecond
	}
	return 3 * time.Second
}

// TestConcurrentReaders: a writer at full speed, readers in two goroutines
// and in another process mapping the same file; zero torn reads, zero
// false hits, zero missed live keys.
func TestConcurrentReaders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "region")
	r, err := shm.Create(path, stressLayout(), shm.CreateOptions{GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tab, err := rcuhash.OpenWriter(r, "t")
	if err != nil {
		t.Fatal(err)
	}
	populate(tab)
	d := stressDuration()
	// Start the other process first; it reads for d.
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperReader$", "-test.v")
	cmd.Env = append(os.Environ(), "KUSHM_STRESS_REGION="+path, "KUSHM_STRESS_DURATION="+d.String())
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var done atomic.Bool
	stop := func() bool { return done.Load() }
	var wg sync.WaitGroup
	results := make([]readStats, 2)
	for i := range results {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = readLoop(r, stop, uint64(i)) }()
	}
	var updates uint64
	wg.Add(1)
	go func() { defer wg.Done(); updates = writeLoop(r, tab, stop) }()
	time.Sleep(d)
	done.Store(true)
	wg.Wait()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("reader process: %v\n%s", err, out.String())
	}
	t.Logf("writer: %d updates in %v", updates, d)
	for i, s := range results {
		t.Logf("goroutine reader %d: %v", i, s)
		if s.bad != 0 || s.hits == 0 || s.snaps == 0 {
			t.Errorf("goroutine reader %d: %v", i, s)
		}
	}
	line := out.String()
	if !strings.Contains(line, "READER OK") {
		t.Fatalf("reader process:\n%s", line)
	}
	t.Logf("process reader: %s", line[strings.Index(line, "READER OK"):])
}

// TestHelperReader is the reader process of TestConcurrentReaders.
func TestHelperReader(t *testing.T) {
	path := os.Getenv("KUSHM_STRESS_REGION")
	if path == "" {
		t.Skip("helper process for TestConcurrentReaders")
	}
	d, _ := time.ParseDuration(os.Getenv("KUSHM_STRESS_DURATION"))
	r, err := shm.Open(path, shm.Options{AllowStale: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	end := time.Now().Add(d)
	st := readLoop(r, func() bool { return time.Now().After(end) }, 99)
	if st.bad != 0 || st.hits == 0 {
		t.Fatalf("READER BAD %v", st)
	}
	fmt.Printf("READER OK %v\n", st)
}

// TestHelperWriter is the writer process of TestKilledWriter: it writes
// until killed.
func TestHelperWriter(t *testing.T) {
	path := os.Getenv("KUSHM_CRASH_REGION")
	if path == "" {
		t.Skip("helper process for TestKilledWriter")
	}
	r, err := shm.Create(path, stressLayout(), shm.CreateOptions{GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	tab, err := rcuhash.OpenWriter(r, "t")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("WRITING")
	writeLoop(r, tab, func() bool { return false })
}

// TestKilledWriter: kill -9 a writer process in the middle of updates; the
// region stays readable and consistent, readers report the stale
// producer through the heartbeat, and a new writer adopts the table.
func TestKilledWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "region")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$", "-test.v")
	cmd.Env = append(os.Environ(), "KUSHM_CRASH_REGION="+path)
	pipe, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	var got strings.Builder
	for !strings.Contains(got.String(), "WRITING") {
		n, err := pipe.Read(buf)
		if err != nil {
			t.Fatalf("writer did not start: %v: %s", err, got.String())
		}
		got.Write(buf[:n])
	}
	time.Sleep(300 * time.Millisecond)
	// While it runs, the producer is live.
	r, err := shm.Open(path, shm.Options{})
	if err != nil {
		t.Fatalf("open while writer runs: %v", err)
	}
	defer r.Close()
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	// Consistent right after the kill.
	end := time.Now().Add(100 * time.Millisecond)
	st := readLoop(r, func() bool { return time.Now().After(end) }, 5)
	if st.bad != 0 {
		t.Fatalf("after kill: %v", st)
	}
	// The producer is stale at once (its pid is gone), and at the latest
	// when its heartbeat is older than max(3 periods, 1s).
	deadline := time.Now().Add(3 * time.Second)
	for r.CheckProducer() == nil {
		if time.Now().After(deadline) {
			t.Fatal("killed producer never reported stale")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := r.CheckProducer(); !errors.Is(err, shm.ErrStaleProducer) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("stale error: %v", err)
	}
	if _, err := shm.Open(path, shm.Options{}); !errors.Is(err, shm.ErrStaleProducer) {
		t.Fatalf("open of a dead producer's region: %v", err)
	}
	tab, _ := rcuhash.Open(r, "t")
	live := 0
	tab.Range(func(e *rcuhash.Entry) bool {
		if msg := checkval(e.Slots, e.Key); msg != "" {
			t.Errorf("range: %s", msg)
		}
		live++
		return true
	})
	// A new producer adopts the region and rebuilds its writer state.
	a, err := shm.Adopt(path, stressLayout(), shm.CreateOptions{GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	w, err := rcuhash.OpenWriter(a, "t")
	if err != nil {
		t.Fatal(err)
	}
	for k := uint64(0); k < permanent; k++ {
		if !w.Has(k) {
			t.Fatalf("adopted table lost permanent key %d", k)
		}
	}
	t.Logf("after kill: %v; %d live nodes; adopted with %d keys", st, live, w.Len())
	if r.CheckProducer() != nil {
		t.Fatal("adopted region still stale")
	}
	_ = strconv.Itoa
}
