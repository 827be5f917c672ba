//go:build linux

package pmu

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
)

// ProcessReader counts presets for all threads of a process, like
// `perf stat -p PID`: OpenProcess counts one thread only.
type ProcessReader struct {
	pid     int
	ids     []PresetID
	tids    []int
	readers []*Reader
	tmp     []Value
}

// OpenProcessAll counts ids for every thread of process pid that exists
// now (listed in <Root>/proc/PID/task) and, with Options.Inherit, for the
// threads and children they create afterwards. Threads created later
// without Inherit are not counted. Per-preset unavailability is reported
// by Err, as for Reader.
func OpenProcessAll(pid int, ids []PresetID, o *Options) (*ProcessReader, error) {
	if o == nil {
		o = &Options{}
	}
	if o.System == nil {
		oo := *o
		oo.System = LoadSystem(o.Root)
		o = &oo
	}
	ents, err := os.ReadDir(rooted(o.System.Root, fmt.Sprintf("/proc/%d/task", pid)))
	if err != nil {
		return nil, fmt.Errorf("open process counters: list threads of %d: %w", pid, err)
	}
	var tids []int
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	sort.Ints(tids)
	p := &ProcessReader{pid: pid, ids: append([]PresetID(nil), ids...), tmp: make([]Value, len(ids))}
	var firstErr error
	for _, tid := range tids {
		r, err := OpenProcess(tid, ids, o)
		if err != nil {
			// The thread may have exited since the listing.
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		p.tids = append(p.tids, tid)
		p.readers = append(p.readers, r)
	}
	if len(p.readers) == 0 {
		if firstErr == nil {
			firstErr = fmt.Errorf("process %d has no threads", pid)
		}
		return nil, firstErr
	}
	return p, nil
}

// Presets returns the presets in Read order.
func (p *ProcessReader) Presets() []PresetID { return p.ids }

// Threads returns the thread ids being counted.
func (p *ProcessReader) Threads() []int { return p.tids }

// Err returns why preset i cannot be counted (as for the first thread).
func (p *ProcessReader) Err(i int) error { return p.readers[0].Err(i) }

// Read fills vals with the sums over all threads: Raw, Scaled, Enabled and
// Running are added up, Ratio is the summed Running / Enabled, and OK is
// true when any thread's event ran. Exited threads keep their final counts.
func (p *ProcessReader) Read(vals []Value) error {
	if len(vals) < len(p.ids) {
		return fmt.Errorf("read counters: %d values for %d presets", len(vals), len(p.ids))
	}
	for i, id := range p.ids {
		vals[i] = Value{Preset: id}
	}
	for _, r := range p.readers {
		if err := r.Read(p.tmp); err != nil {
			return err
		}
		for i, v := range p.tmp {
			vals[i].OK = vals[i].OK || v.OK
			vals[i].Raw += v.Raw
			vals[i].Scaled += v.Scaled
			vals[i].Enabled += v.Enabled
			vals[i].Running += v.Running
		}
	}
	for i := range vals[:len(p.ids)] {
		if vals[i].Enabled > 0 {
			vals[i].Ratio = float64(vals[i].Running) / float64(vals[i].Enabled)
		}
	}
	return nil
}

// Close closes every thread's counters.
func (p *ProcessReader) Close() error {
	var errs []error
	for _, r := range p.readers {
		errs = append(errs, r.Close())
	}
	p.readers = nil
	return errors.Join(errs...)
}
