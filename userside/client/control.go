package client

import (
	"fmt"
	"github.com/kushm/kushm/shm"
	"sync/atomic"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/errs"
)

// The control section's sampling request (the syscall thresholds are in
// syscalls.go): anyone the operator allows (the .ctl file's group, or
// /dev/kushm's) may ask the producer for another interval; the producer
// range-checks every value and counts the ones it refuses in the header
// (Status().ControlRejected).

// RequestedInterval is the sampling interval requested through the
// control section, 0 when none is (the producer samples at its own).
func (c *Client) RequestedInterval() (time.Duration, error) { return guarded(c.requestedInterval) }

func (c *Client) requestedInterval() (time.Duration, error) {
	ctl, err := control(c.r)
	if err != nil {
		return 0, fmt.Errorf("read requested interval: %w", err)
	}
	return time.Duration(atomic.LoadUint32(&ctl.IntervalUs)) * time.Microsecond, nil
}

// RequestInterval asks the producer to sample every d (0: its configured
// interval). d must be 0 or within [abi.MinIntervalUs, abi.MaxIntervalUs]
// µs (errs.ErrInvalid otherwise); the client must be opened with
// Options.WritableControl.
func (c *Client) RequestInterval(d time.Duration) error {
	return shm.Guard(func() error { return c.requestInterval(d) })
}

func (c *Client) requestInterval(d time.Duration) error {
	us := d / time.Microsecond
	if d != 0 && (d%time.Microsecond != 0 || us < abi.MinIntervalUs || us > abi.MaxIntervalUs) {
		return fmt.Errorf("request interval %v: want 0 or %v … %v: %w", d,
			time.Duration(abi.MinIntervalUs)*time.Microsecond, time.Duration(abi.MaxIntervalUs)*time.Microsecond, errs.ErrInvalid)
	}
	ctl, err := writableControl(c.r)
	if err != nil {
		return fmt.Errorf("request interval %v: %w", d, err)
	}
	atomic.StoreUint32(&ctl.IntervalUs, uint32(us))
	return nil
}
