//go:build linux

package pmu

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
)

// SumReader adds up several Readers of the same presets: one per thread
// of a process (OpenProcessAll) or one per CPU for a cgroup
// (OpenCgroupAll).
type SumReader struct {
	ids     []PresetID
	targets []int
	readers []*Reader
	tmp     []Value
}

// OpenProcessAll counts ids for every thread of process pid that exists
// now (listed in <Root>/proc/PID/task) and, with Options.Inherit, for the
// threads and children they create afterwards. Threads created later
// without Inherit are not counted. Per-preset unavailability is reported
// by Err, as for Reader.
func OpenProcessAll(pid int, ids []PresetID, o *Options) (*SumReader, error) {
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
	p := &SumReader{ids: append([]PresetID(nil), ids...), tmp: make([]Value, len(ids))}
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
		p.targets = append(p.targets, tid)
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

// OpenCgroupAll counts ids for the tasks of a cgroup on every online CPU
// (one Reader per CPU, as the kernel has no all-CPU cgroup events).
func OpenCgroupAll(cgroupPath string, ids []PresetID, o *Options) (*SumReader, error) {
	if o == nil {
		o = &Options{}
	}
	if o.System == nil {
		oo := *o
		oo.System = LoadSystem(o.Root)
		o = &oo
	}
	cpus, err := OnlineCPUs(o.System.Root)
	if err != nil {
		return nil, fmt.Errorf("open cgroup counters: %w", err)
	}
	p := &SumReader{ids: append([]PresetID(nil), ids...), tmp: make([]Value, len(ids))}
	for _, cpu := range cpus {
		r, err := OpenCgroup(cgroupPath, cpu, ids, o)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.targets = append(p.targets, cpu)
		p.readers = append(p.readers, r)
	}
	if len(p.readers) == 0 {
		return nil, fmt.Errorf("open cgroup counters: no online CPUs: %w", ErrNoCPU)
	}
	return p, nil
}

// Presets returns the presets in Read order.
func (p *SumReader) Presets() []PresetID { return p.ids }

// Targets returns what is summed: thread ids (OpenProcessAll) or CPUs
// (OpenCgroupAll).
func (p *SumReader) Targets() []int { return p.targets }

// Err returns why preset i cannot be counted (as for the first member).
func (p *SumReader) Err(i int) error { return p.readers[0].Err(i) }

// Read fills vals with the sums over all members: Raw, Scaled, Enabled and
// Running are added up, Ratio is the summed Running / Enabled, and OK is
// true when any member's event ran. Exited threads keep their final counts.
func (p *SumReader) Read(vals []Value) error {
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
func (p *SumReader) Close() error {
	var errs []error
	for _, r := range p.readers {
		errs = append(errs, r.Close())
	}
	p.readers = nil
	return errors.Join(errs...)
}
