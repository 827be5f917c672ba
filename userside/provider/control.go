package provider

import (
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/shm"
)

// The control section is written by anyone the operator allows (the .ctl
// file's mode and group): every value is loaded once, range-checked, and
// an out-of-range one is ignored (the configured value is used) and
// counted once in the header's control_rejected (producer-owned memory:
// users cannot overwrite the count). Nothing read from it is used as a
// size, an offset or a loop bound.
//
// The same users may truncate, grow or replace the file, or flood it with
// values. None of that stops the provider: it checks the file before each
// read (shm.Region.ControlChanged), reads under shm.Guard (a truncation
// in between is an error, not a SIGBUS) and, when the file changed,
// renews it (a fresh file with the last values, renamed into place);
// log lines about control are rate-limited.

// ctlLogEvery is the least time between two log lines about control.
const ctlLogEvery = 10 * time.Second

func (p *Provider) ctlU32(off uintptr) uint32 {
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&p.ctl[off])))
}

// readControl applies the control section's interval and validates its
// other fields; a control file that changed under it is renewed.
func (p *Provider) readControl() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.ctl == nil {
		return
	}
	// The file's identity (two system calls and a path walk) is checked
	// at the heartbeat pace, not at every 10 ms tick; the values are
	// loads from the mapping and are read every time.
	var err error
	if now := monoNs(); now-p.lastCtlCheck >= uint64(heartbeatEvery) {
		p.lastCtlCheck = now
		err = p.region.ControlChanged()
	}
	if err == nil {
		err = shm.Guard(func() error { p.applyControl(); return nil })
	}
	if err != nil {
		p.renewControl(err)
	}
}

// renewControl replaces a control file that changed (why) with a fresh
// one; if that fails, control is off (the configured values apply) and
// sampling goes on.
func (p *Provider) renewControl(why error) {
	p.stats.CtlRenewed++
	rerr := p.region.RenewControl(shm.ControlSpec().Init)
	if rerr == nil {
		s, err := p.region.Section(abi.SecNameControl)
		if err == nil {
			var b []byte
			if b, err = p.region.Bytes(s); err == nil && len(b) >= abi.ControlHeadSize {
				p.ctl = b
			}
		}
		rerr = err
	}
	if rerr != nil {
		p.ctl = nil
		p.interval.Store(int64(p.cfg.Interval))
		p.cfg.Logf("control: %v; renewing it failed (%v): control values are ignored from now on, sampling goes on", why, rerr)
		return
	}
	if p.ctlLog(time.Now()) {
		p.cfg.Logf("control: %v: made a fresh control file (%d renewed so far)", why, p.stats.CtlRenewed)
	}
}

// ctlLog reports whether a control log line may be written now.
func (p *Provider) ctlLog(now time.Time) bool {
	if now.Sub(p.ctlLogged) < ctlLogEvery {
		p.ctlQuiet++
		return false
	}
	p.ctlLogged = now
	return true
}

// applyControl reads and validates the control values (under p.mu and
// shm.Guard).
func (p *Provider) applyControl() {
	rejected := uint64(0)
	// Each field: (offset, valid?) — a rejected value is counted once,
	// when it first appears.
	check := func(i int, off uintptr, ok func(uint32) bool) (uint32, bool) {
		v := p.ctlU32(off)
		if ok(v) {
			p.ctlSeen[i] = v
			return v, true
		}
		if v != p.ctlSeen[i] {
			p.ctlSeen[i] = v
			rejected++
		}
		return v, false
	}
	iv, ok := check(0, abi.ControlIntervalUsOff, func(v uint32) bool { return v == 0 || (v >= abi.MinIntervalUs && v <= abi.MaxIntervalUs) })
	want := p.cfg.Interval
	if ok && iv != 0 {
		want = time.Duration(iv) * time.Microsecond
	}
	p.interval.Store(int64(want))
	check(1, abi.ControlKx100Off, func(v uint32) bool { return v <= abi.MaxKx100 })
	check(2, abi.ControlWarmupOff, func(v uint32) bool { return v <= abi.MaxWarmup })
	// The threshold rules (ABI 1.4): validated again where they are used
	// (sysstat.PolicyOf); checked here so that a bad value is counted.
	check(3, abi.ControlThModeOff, func(v uint32) bool { return v <= abi.ThModeInterp })
	check(4, abi.ControlQppmOff, func(v uint32) bool { return v <= abi.MaxQppm })
	check(5, abi.ControlFactorX1000Off, func(v uint32) bool { return v <= abi.MaxFactorX1000 })
	check(6, abi.ControlDecayShiftOff, func(v uint32) bool {
		return v == 0 || (v >= abi.MinDecayShift && v <= abi.MaxDecayShift)
	})
	if rejected > 0 {
		n := p.region.AddControlRejected(rejected)
		p.stats.CtlRejected = n
		if p.ctlLog(time.Now()) {
			p.cfg.Logf("control: refused %d out-of-range value(s) (interval_us %d, kx100 %d, warmup %d); %d refused so far, %d control messages held back",
				rejected, iv, p.ctlU32(abi.ControlKx100Off), p.ctlU32(abi.ControlWarmupOff), n, p.ctlQuiet)
			p.ctlQuiet = 0
		}
	}
}
