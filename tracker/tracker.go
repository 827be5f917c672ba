// SPDX-License-Identifier: Apache-2.0

package tracker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/kushm/kushm/internal/errs"
)

// Sentinel errors. ErrNotSupported and ErrInvalid are kushm's one family
// (internal/errs: pmu's, msr's and bpfrt's are the same values); ErrClosed
// refines errs.ErrClosed.
var (
	ErrNotSupported = errs.ErrNotSupported
	ErrInvalid      = errs.ErrInvalid
	ErrClosed       = errs.Refine(errs.ErrClosed, "tracker closed")
)

// ModuleName is the kernel module whose BTF holds the kfuncs.
const ModuleName = "kushm"

// Kfuncs are the names of the helper ABI (docs/helpers.md).
var Kfuncs = []string{
	"bpf_kushm_read_counter",
	"bpf_kushm_table_lookup",
	"bpf_kushm_syscall_threshold",
	"bpf_kushm_record_latency",
}

// KfuncsAvailable reports whether every bpf_kushm_* kfunc is declared in
// the kushm module's BTF (/sys/kernel/btf/kushm). A module built without
// BTF loads fine but registers no kfunc: this is how to tell.
func KfuncsAvailable() error {
	if _, err := os.Stat("/sys/kernel/btf/" + ModuleName); err != nil {
		return fmt.Errorf("kfuncs: module %s has no BTF: %w", ModuleName, ErrNotSupported)
	}
	h, err := btf.FindHandle(func(info *btf.HandleInfo) bool { return info.IsModule() && info.Name == ModuleName })
	if err != nil {
		return fmt.Errorf("kfuncs: BTF of module %s: %w", ModuleName, err)
	}
	defer h.Close()
	base, err := btf.LoadKernelSpec()
	if err != nil {
		return fmt.Errorf("kfuncs: vmlinux BTF: %w", err)
	}
	spec, err := h.Spec(base)
	if err != nil {
		return fmt.Errorf("kfuncs: BTF of module %s: %w", ModuleName, err)
	}
	for _, name := range Kfuncs {
		var fn *btf.Func
		if err := spec.TypeByName(name, &fn); err != nil {
			return fmt.Errorf("kfuncs: %s: %w", name, ErrNotSupported)
		}
	}
	return nil
}

// Event is one outlier: a syscall slower than its threshold.
type Event struct {
	Time      time.Duration // CLOCK_MONOTONIC of the syscall's exit
	Latency   time.Duration
	Threshold time.Duration // the threshold after this sample
	PID, TID  uint32
	NR        uint32
	Comm      string
}

// EventSize is the size of a ring buffer record (struct event).
const EventSize = 56

// ParseEvent decodes one ring buffer record (struct event of
// bpf/tracker.bpf.c, not region bytes).
//
//kushm:offsets-ok the BPF program's event record, sized by EventSize
func ParseEvent(b []byte) (Event, error) {
	if len(b) < EventSize {
		return Event{}, fmt.Errorf("parse event: %d bytes, want %d: %w", len(b), EventSize, ErrInvalid)
	}
	le := binary.LittleEndian
	comm := b[40:56]
	if i := bytes.IndexByte(comm, 0); i >= 0 {
		comm = comm[:i]
	}
	return Event{
		Time:      time.Duration(le.Uint64(b[0:])),
		Latency:   time.Duration(le.Uint64(b[8:])),
		Threshold: time.Duration(le.Uint64(b[16:])),
		PID:       le.Uint32(b[24:]),
		TID:       le.Uint32(b[28:]),
		NR:        le.Uint32(b[32:]),
		Comm:      string(comm),
	}, nil
}

// Options configure Start.
type Options struct {
	// TGID limits tracking to one process (thread group); 0 tracks all.
	TGID uint32
}

// Counters are the tracker's own statistics (summed over CPUs).
type Counters struct {
	Samples, Outliers, Dropped, Errors, Untracked uint64
}

// Tracker is the running syscall-latency tracker.
type Tracker struct {
	objs  trackerObjects
	links []link.Link
	rd    *ringbuf.Reader
}

// Start loads and attaches the tracker. It needs the kushm module loaded
// with its kfuncs (KfuncsAvailable) and CAP_BPF + CAP_PERFMON.
func Start(o Options) (*Tracker, error) {
	if err := KfuncsAvailable(); err != nil {
		return nil, fmt.Errorf("start tracker: %w", err)
	}
	spec, err := loadTracker()
	if err != nil {
		return nil, fmt.Errorf("start tracker: %w", err)
	}
	if o.TGID != 0 {
		if err := spec.Variables["filter_tgid"].Set(o.TGID); err != nil {
			return nil, fmt.Errorf("start tracker: set filter: %w", err)
		}
	}
	t := &Tracker{}
	if err := spec.LoadAndAssign(&t.objs, nil); err != nil {
		return nil, fmt.Errorf("start tracker: load: %w", err)
	}
	for _, p := range []*ebpf.Program{t.objs.SysEnter, t.objs.SysExit} {
		l, err := link.AttachTracing(link.TracingOptions{Program: p})
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("start tracker: attach %s: %w", p, err)
		}
		t.links = append(t.links, l)
	}
	t.rd, err = ringbuf.NewReader(t.objs.Events)
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("start tracker: ring buffer: %w", err)
	}
	return t, nil
}

// Read blocks until the next outlier (or the deadline set with
// SetDeadline) and returns it.
func (t *Tracker) Read() (Event, error) {
	if t.rd == nil {
		return Event{}, ErrClosed
	}
	rec, err := t.rd.Read()
	if err != nil {
		if errors.Is(err, ringbuf.ErrClosed) {
			return Event{}, ErrClosed
		}
		return Event{}, fmt.Errorf("read outlier: %w", err)
	}
	return ParseEvent(rec.RawSample)
}

// SetDeadline makes Read return os.ErrDeadlineExceeded after t (zero: none).
func (t *Tracker) SetDeadline(d time.Time) {
	if t.rd != nil {
		t.rd.SetDeadline(d)
	}
}

// Counters returns the tracker's counters.
func (t *Tracker) Counters() (Counters, error) {
	var c Counters
	dst := []*uint64{&c.Samples, &c.Outliers, &c.Dropped, &c.Errors, &c.Untracked}
	for i, p := range dst {
		var per []uint64
		if err := t.objs.Stats.Lookup(uint32(i), &per); err != nil {
			return c, fmt.Errorf("tracker counters: %w", err)
		}
		for _, v := range per {
			*p += v
		}
	}
	return c, nil
}

// Close detaches the programs and frees everything.
func (t *Tracker) Close() error {
	var errs []error
	if t.rd != nil {
		errs = append(errs, t.rd.Close())
		t.rd = nil
	}
	for _, l := range t.links {
		errs = append(errs, l.Close())
	}
	t.links = nil
	errs = append(errs, t.objs.Close())
	return errors.Join(errs...)
}
