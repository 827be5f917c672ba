//go:build linux

package perfsys

import (
	"encoding/binary"
	"errors"
	"testing"
)

func TestParseGroup(t *testing.T) {
	b := make([]byte, GroupBufSize(2))
	for i, v := range []uint64{2, 1000, 250, 7, 9} {
		binary.NativeEndian.PutUint64(b[8*i:], v)
	}
	cs := make([]Count, 2)
	if err := ParseGroup(b, cs); err != nil {
		t.Fatal(err)
	}
	if cs[0] != (Count{7, 1000, 250}) || cs[1] != (Count{9, 1000, 250}) {
		t.Fatalf("%+v", cs)
	}
	if err := ParseGroup(b[:30], cs); err == nil {
		t.Error("short read accepted")
	}
	if err := ParseGroup(b, cs[:1]); err == nil {
		t.Error("member count mismatch accepted")
	}
}

func TestOpenErrorKeepsErrno(t *testing.T) {
	// A hardware event on a machine without a PMU, or a bogus type
	// anywhere: either way the errno must survive for errors.Is.
	_, err := Open(Attr{Type: 0xfffff, Config: 1}, Target{PID: 0, CPU: -1, CgroupFD: -1}, -1, false)
	var oe *OpenError
	if !errors.As(err, &oe) || !(errors.Is(err, ENOENT) || errors.Is(err, EINVAL) || errors.Is(err, EOPNOTSUPP)) {
		t.Fatalf("bogus event type: %v", err)
	}
}

func FuzzParseGroup(f *testing.F) {
	seed := make([]byte, GroupBufSize(3))
	binary.NativeEndian.PutUint64(seed, 3)
	f.Add(seed, 3)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0}, 1)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 64 {
			return
		}
		cs := make([]Count, n)
		if err := ParseGroup(b, cs); err != nil {
			return
		}
		if len(b) < GroupBufSize(n) {
			t.Fatalf("accepted %d bytes for %d members", len(b), n)
		}
	})
}
