package provider

import (
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/kushm/kushm/internal/abi"
)

// The control section is written by anyone the operator allows (the .ctl
// file's mode and group): every value is loaded once, range-checked, and
// an out-of-range one is ignored (the configured value is used) and
// counted once in the header's control_rejected (producer-owned memory:
// users cannot overwrite the count). Nothing read from it is used as a size, an
// offset or a loop bound.

func (p *Provider) ctlU32(off uintptr) uint32 {
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&p.ctl[off])))
}

// readControl applies the control section's interval and validates its
// other fields.
func (p *Provider) readControl() {
	if p.ctl == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
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
	iv, ok := check(0, 8, func(v uint32) bool { return v == 0 || (v >= abi.MinIntervalUs && v <= abi.MaxIntervalUs) })
	want := p.cfg.Interval
	if ok && iv != 0 {
		want = time.Duration(iv) * time.Microsecond
	}
	p.interval.Store(int64(want))
	check(1, 12, func(v uint32) bool { return v <= abi.MaxKx100 })
	check(2, 16, func(v uint32) bool { return v <= abi.MaxWarmup })
	if rejected > 0 {
		n := p.region.AddControlRejected(rejected)
		p.stats.CtlRejected = n
		p.cfg.Logf("control: refused %d out-of-range value(s) (interval_us %d, kx100 %d, warmup %d); %d refused so far",
			rejected, iv, p.ctlU32(12), p.ctlU32(16), n)
	}
}
