package client_test

import (
	"errors"
	"testing"
	"time"

	"github.com/kushm/kushm/internal/errs"
	"github.com/kushm/kushm/shm"
	"github.com/kushm/kushm/userside/client"
)

// A reader asks the producer for another interval through the control
// section; the producer applies it; an out-of-range value is refused
// before it is written; a read-only client cannot write.
func TestRequestInterval(t *testing.T) {
	p := startProvider(t)
	ro, err := client.Open(client.Options{Path: p.Path()})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.RequestInterval(50 * time.Millisecond); !errors.Is(err, shm.ErrReadOnly) {
		t.Fatalf("read-only client: %v, want ErrReadOnly", err)
	}
	c, err := client.Open(client.Options{Path: p.Path(), WritableControl: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.RequestInterval(time.Millisecond); !errors.Is(err, errs.ErrInvalid) {
		t.Fatalf("1 ms: %v, want ErrInvalid", err)
	}
	if err := c.RequestInterval(50 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d, err := ro.RequestedInterval(); err != nil || d != 50*time.Millisecond {
		t.Fatalf("requested interval read back %v, %v", d, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.Interval() != 50*time.Millisecond && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if p.Interval() != 50*time.Millisecond {
		t.Fatalf("the producer samples every %v, want the requested 50ms", p.Interval())
	}
	if err := c.RequestInterval(0); err != nil {
		t.Fatal(err)
	}
	for p.Interval() != 10*time.Millisecond && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if p.Interval() != 10*time.Millisecond {
		t.Fatalf("after 0 the producer samples every %v, want its own 10ms", p.Interval())
	}
}
