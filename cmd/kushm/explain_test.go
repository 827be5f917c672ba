package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/userside/client"
	"github.com/kushm/kushm/userside/provider"
)

// readerCommands are the commands that open a region, with whether they
// read a stopped or stale producer's region (AllowStale) and the
// arguments that make them open it once and return.
var readerCommands = []struct {
	args       []string
	allowStale bool
	// serves: on success it keeps running (only failures are run).
	serves bool
}{
	{args: []string{"status"}, allowStale: true},
	{args: []string{"query", "page-faults", "--interval", "1ms"}},
	{args: []string{"stats", "--interval", "1ms"}},
	{args: []string{"top", "--iterations", "1", "--plain", "--interval", "1ms"}},
	{args: []string{"dump"}, allowStale: true},
	{args: []string{"dump", "-o", "json"}, allowStale: true},
	{args: []string{"syscalls"}, allowStale: true},
	{args: []string{"trace"}, allowStale: true},
	{args: []string{"bpf", "run", "no-such-program.o"}, allowStale: true, serves: true},
	{args: []string{"web", "--listen", "127.0.0.1:0"}, allowStale: true, serves: true},
}

// TestReaderExplanations: every reader command, against a missing,
// corrupt, stopped and stale region, explains the failure exactly as
// client.Open does (every command opens through it), and a command that
// reads stale regions fails on none for a reason of opening.
func TestReaderExplanations(t *testing.T) {
	dir := t.TempDir()
	regions := map[string]string{"missing": filepath.Join(dir, "missing")}

	corrupt := filepath.Join(dir, "corrupt")
	if err := os.WriteFile(corrupt, bytes.Repeat([]byte("not a kushm region "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	regions["corrupt"] = corrupt

	p, err := provider.New(provider.Config{Path: filepath.Join(dir, "stopped"), Interval: 10 * time.Millisecond,
		Watch: provider.Watch{None: true}, NoMSR: true})
	if err != nil {
		t.Fatal(err)
	}
	p.Sample()
	p.Close()
	regions["stopped"] = p.Path()

	stale := filepath.Join(dir, "stale")
	r, err := shm.Create(stale, shm.Layout{NCPUs: 1, ProducerKind: abi.ProducerDaemon, ProducerName: "test",
		HeartbeatPeriod: 10 * time.Millisecond, Sections: []shm.SectionSpec{shm.ControlSpec()}}, shm.CreateOptions{GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Its producer died: a pid beyond PID_MAX_LIMIT exists nowhere.
	f, err := os.OpenFile(stale, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var pid [4]byte
	binary.LittleEndian.PutUint32(pid[:], 4<<20+1)
	if _, err := f.WriteAt(pid[:], int64(abi.HeaderPIDOff)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	regions["stale"] = stale

	for name, path := range regions {
		_, strict := client.Open(client.Options{Path: path})
		_, loose := client.Open(client.Options{Path: path, AllowStale: true})
		if strict == nil {
			t.Fatalf("%s: the client opens it", name)
		}
		if (loose == nil) != (name == "stopped" || name == "stale") {
			t.Fatalf("%s: client.Open with AllowStale: %v", name, loose)
		}
		for _, c := range readerCommands {
			want := strict
			if c.allowStale {
				want = loose
			}
			if want == nil && c.serves {
				continue // it would open the region and serve it
			}
			args := append(append([]string(nil), c.args...), "--region", path)
			var out bytes.Buffer
			err := run(args, &out)
			switch {
			case want != nil && err == nil:
				t.Errorf("%s: kushm %s succeeds; the client says %v", name, strings.Join(c.args, " "), want)
			case want != nil && !strings.Contains(err.Error(), want.Error()):
				t.Errorf("%s: kushm %s explains\n  %v\nthe client\n  %v", name, strings.Join(c.args, " "), err, want)
			case want == nil && err != nil && strings.Contains(err.Error(), "open region"):
				t.Errorf("%s: kushm %s fails to open what the client opens: %v", name, strings.Join(c.args, " "), err)
			}
		}
	}
}
