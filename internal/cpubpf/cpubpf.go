// SPDX-License-Identifier: Apache-2.0

package cpubpf

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/kushm/kushm/internal/sys"
	"github.com/kushm/kushm/internal/sys/perfsys"
)

// Slots is the most events a CPU's sample holds.
const Slots = len(cpusampleCpuSample{}.Val)

// Sample is one CPU's latest sample: Val, Enabled and Running of slot k
// are valid where bit k of Valid is set.
type Sample = cpusampleCpuSample

// sampleSize is the size of one element of the samples array (a
// multiple of 8: the kernel lays the elements of an mmapable array out
// back to back at that stride).
const sampleSize = int(unsafe.Sizeof(Sample{}))

// seqReads bounds the copies Read takes of one CPU's element to find it
// between two equal even sequence counts.
const seqReads = 8

// ErrNoSample is what Read returns for a CPU whose program has not
// written a complete sample yet (or was writing on every try).
var ErrNoSample = errors.New("no complete sample")

// Config says what to sample.
type Config struct {
	NCPUs int // possible CPUs (the elements of the samples array)
	// CPUs are the CPUs to sample (each gets a timer event).
	CPUs []int
	// Events[k] maps a CPU to the perf event fd of slot k on it (owned by
	// the caller, kept open while the Sampler is); at most Slots.
	Events []map[int]int
	// Interval is the sampling period of every CPU's timer.
	Interval time.Duration
}

// Sampler is the loaded program, its timer running on every sampled CPU.
type Sampler struct {
	objs  cpusampleObjects
	mem   []byte // the samples array, mapped read-only
	ncpus int
	armed []atomic.Bool // per CPU: its timer was armed (Read's ErrNotArmed otherwise)
}

// Timer states (struct cpu_timer's armed).
const (
	timerNone    = 0 // not armed yet
	timerArmed   = 1
	timerFailed  = 2 // a helper refused (err says why)
	timerStopped = 3 // it fired on another CPU (its own went offline), or its re-arm failed
)

// armWait bounds how long Open waits for the CPUs to arm their timers.
const armWait = 2 * time.Second

// Open loads the program and starts it on every CPU of cfg.
func Open(cfg Config) (*Sampler, error) {
	s, err := open(cfg)
	if err != nil {
		return nil, fmt.Errorf("load the per-CPU sampler: %w", err)
	}
	return s, nil
}

func open(cfg Config) (*Sampler, error) {
	if len(cfg.Events) > Slots {
		return nil, fmt.Errorf("%d events, at most %d", len(cfg.Events), Slots)
	}
	if cfg.NCPUs <= 0 || len(cfg.CPUs) == 0 {
		return nil, errors.New("bad configuration: no CPUs")
	}
	possible, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, err
	}
	if possible != cfg.NCPUs {
		return nil, fmt.Errorf("%d possible CPUs, the kernel says %d", cfg.NCPUs, possible)
	}
	spec, err := loadCpusample()
	if err != nil {
		return nil, err
	}
	if err := spec.Variables["nslots"].Set(uint32(len(cfg.Events))); err != nil {
		return nil, fmt.Errorf("set nslots: %w", err)
	}
	spec.Maps["samples"].MaxEntries = uint32(cfg.NCPUs)
	spec.Maps["timers"].MaxEntries = uint32(cfg.NCPUs)
	s := &Sampler{ncpus: cfg.NCPUs, armed: make([]atomic.Bool, cfg.NCPUs)}
	if err := spec.LoadAndAssign(&s.objs, nil); err != nil {
		if errors.Is(err, sys.EOPNOTSUPP) || errors.Is(err, ebpf.ErrNotSupported) {
			// PREEMPT_RT kernels refuse bpf_timer at load ("bpf_timer
			// cannot be used for PREEMPT_RT").
			return nil, fmt.Errorf("%w: this kernel refuses BPF timers (PREEMPT_RT kernels do: \"bpf_timer cannot be used for PREEMPT_RT\")", ErrNotSupported)
		}
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	arrays := s.eventArrays()
	for k, fds := range cfg.Events {
		for cpu, fd := range fds {
			if cpu < 0 || cpu >= cfg.NCPUs || fd < 0 {
				continue
			}
			if err := arrays[k].Put(uint32(cpu), uint32(fd)); err != nil {
				return nil, fmt.Errorf("event %d cpu %d: %w", k, cpu, err)
			}
		}
	}
	size := cfg.NCPUs * sampleSize
	page := sys.PageSize()
	if s.mem, err = sys.Mmap(s.objs.Samples.FD(), 0, (size+page-1)/page*page, sys.ProtRead); err != nil {
		return nil, fmt.Errorf("map the samples array: %w", err)
	}
	for _, cpu := range cfg.CPUs {
		if cpu < 0 || cpu >= cfg.NCPUs {
			return nil, fmt.Errorf("cpu %d out of range (%d possible)", cpu, cfg.NCPUs)
		}
	}
	if err := s.SetInterval(cfg.Interval); err != nil {
		return nil, err
	}
	armed, err := s.arm(cfg.CPUs)
	if err != nil {
		return nil, err
	}
	if len(armed) == 0 {
		return nil, fmt.Errorf("no CPU armed its timer within %v", armWait)
	}
	ok = true
	return s, nil
}

// arm attaches the arm program (tp_btf/sched_switch), makes each of
// cpus switch by running a thread there until its timer is armed, and
// detaches the program: afterwards no program runs on the switch path.
// A CPU this process may not run on (a cpuset) arms at its own next
// switch; one that has not armed within armWait is left out (Read says
// ErrNotArmed: its counters are the caller's to read). It returns the
// CPUs of cpus that armed, and fails when a helper refused to arm a timer.
func (s *Sampler) arm(cpus []int) ([]int, error) {
	l, err := link.AttachTracing(link.TracingOptions{Program: s.objs.Arm})
	if err != nil {
		return nil, fmt.Errorf("attach the arming program: %w", err)
	}
	defer l.Close()
	deadline := time.Now().Add(armWait)
	pending := append([]int(nil), cpus...)
	var armed []int
	for len(pending) > 0 && time.Now().Before(deadline) {
		left := pending[:0]
		for _, cpu := range pending {
			t, err := s.timer(cpu)
			if err != nil {
				return nil, err
			}
			switch t.Armed {
			case timerArmed:
				s.armed[cpu].Store(true)
				armed = append(armed, cpu)
				continue
			case timerFailed:
				return nil, fmt.Errorf("arm the timer of cpu %d: %w", cpu, armError(t.Err))
			}
			left = append(left, cpu)
			// A thread moved to cpu makes it switch (the arm program runs).
			if restore, err := perfsys.PinThread(cpu); err == nil {
				time.Sleep(time.Millisecond)
				restore()
			}
		}
		pending = left
		if len(pending) > 0 {
			time.Sleep(time.Millisecond)
		}
	}
	return armed, nil
}

func (s *Sampler) timer(cpu int) (cpusampleCpuTimer, error) {
	var t cpusampleCpuTimer
	if err := s.objs.Timers.Lookup(uint32(cpu), &t); err != nil {
		return t, fmt.Errorf("timer of cpu %d: %w", cpu, err)
	}
	return t, nil
}

// Rearm restarts the timers among cpus that do not run: those of CPUs
// that went offline (the kernel moved their timers to another CPU, where
// they stopped) and came back, those whose re-arm failed, and those
// never armed (a CPU offline at Open that came online since: pass it
// once its events are in place, SetEvent). It attaches the arming
// program for as long as that takes (at most 2 s: pass only online
// CPUs, as the program runs at each switch meanwhile) and returns the
// CPUs it started. The caller calls it for such CPUs only (the provider:
// those whose samples stopped advancing, and those that came online),
// backing off: a CPU this process may not run on arms only when it
// switches by itself.
//
// Concurrency: Read may run meanwhile; Rearm, SetInterval and Close are
// for one goroutine.
func (s *Sampler) Rearm(cpus []int) ([]int, error) {
	var stopped []int
	for _, cpu := range cpus {
		if cpu < 0 || cpu >= s.ncpus {
			continue
		}
		t, err := s.timer(cpu)
		if err != nil {
			return nil, fmt.Errorf("rearm: %w", err)
		}
		if t.Armed == timerStopped || t.Armed == timerNone {
			stopped = append(stopped, cpu)
		}
	}
	if len(stopped) == 0 {
		return nil, nil
	}
	started, err := s.arm(stopped)
	if err != nil {
		return nil, fmt.Errorf("rearm: %w", err)
	}
	return started, nil
}

// Moved counts the times a timer fired on a CPU other than its own (its
// CPU had gone offline) and stopped, all CPUs together.
func (s *Sampler) Moved() (uint64, error) {
	var n uint64
	for cpu := 0; cpu < s.ncpus; cpu++ {
		t, err := s.timer(cpu)
		if err != nil {
			return 0, err
		}
		n += t.Moved
	}
	return n, nil
}

func (s *Sampler) eventArrays() []*ebpf.Map {
	return []*ebpf.Map{s.objs.Ev0, s.objs.Ev1, s.objs.Ev2, s.objs.Ev3, s.objs.Ev4, s.objs.Ev5, s.objs.Ev6, s.objs.Ev7,
		s.objs.Ev8, s.objs.Ev9, s.objs.Ev10, s.objs.Ev11, s.objs.Ev12, s.objs.Ev13, s.objs.Ev14, s.objs.Ev15,
		s.objs.Ev16, s.objs.Ev17, s.objs.Ev18, s.objs.Ev19, s.objs.Ev20, s.objs.Ev21, s.objs.Ev22, s.objs.Ev23}
}

// SetEvent makes slot k of cpu read perf event fd from the next sample
// on (the caller's, kept open as Config.Events; a CPU that came back
// online, whose old events no longer count).
func (s *Sampler) SetEvent(k, cpu, fd int) error {
	arrays := s.eventArrays()
	if k < 0 || k >= len(arrays) || cpu < 0 || cpu >= s.ncpus || fd < 0 {
		return fmt.Errorf("set event %d of cpu %d: out of range", k, cpu)
	}
	if err := arrays[k].Put(uint32(cpu), uint32(fd)); err != nil {
		return fmt.Errorf("set event %d of cpu %d: %w", k, cpu, err)
	}
	return nil
}

// ErrNotArmed is what Read returns for a CPU whose timer was not armed
// (see Open): the caller reads that CPU's counters itself.
var ErrNotArmed = errors.New("no timer on this CPU")

// ErrNotSupported wraps the reasons this kernel cannot run the sampler.
var ErrNotSupported = errors.New("not supported")

// armError names why a timer could not be armed (a helper's -errno).
func armError(e int64) error {
	switch sys.Errno(-e) {
	case sys.EINVAL: // BPF_F_TIMER_CPU_PIN unknown
		return fmt.Errorf("%w: BPF timers pinned to a CPU need Linux 6.7 or later (bpf_timer_start: EINVAL)", ErrNotSupported)
	case sys.EOPNOTSUPP:
		return fmt.Errorf("%w: this kernel has no BPF timers here (EOPNOTSUPP)", ErrNotSupported)
	}
	return fmt.Errorf("a BPF timer helper returned %d", e)
}

// SetInterval changes every CPU's sampling period from its next sample on.
func (s *Sampler) SetInterval(d time.Duration) error {
	if d < time.Millisecond {
		return fmt.Errorf("set interval %v: below 1 ms", d)
	}
	if err := s.objs.Config.Put(uint32(0), uint64(d)); err != nil {
		return fmt.Errorf("set interval: %w", err)
	}
	return nil
}

// RearmErrors counts the timers' failed re-arms, all CPUs together (a
// failed re-arm stops that CPU's timer, until Rearm).
func (s *Sampler) RearmErrors() (uint64, error) {
	var n uint64
	for cpu := 0; cpu < s.ncpus; cpu++ {
		t, err := s.timer(cpu)
		if err != nil {
			return 0, err
		}
		n += t.RearmErr
	}
	return n, nil
}

// Read copies cpu's latest complete sample into out. It never blocks:
// it takes at most seqReads copies and returns ErrNoSample when none
// was complete (the program writing on every try) or the CPU has none
// yet. A copy is complete when the sequence count read before it and
// after it are equal and even, and it names cpu.
//
// Concurrency: one program per CPU writes that CPU's element (its timer
// interrupt); any number of readers may read at once. The loads of seq
// are atomic; the copy between them may be torn, which the second load
// detects (the program stores seq with full barriers, bpf/cpusample.bpf.c).
func (s *Sampler) Read(cpu int, out *Sample) error {
	if s.mem == nil {
		return errors.New("read sample: sampler closed")
	}
	if cpu < 0 || cpu >= s.ncpus || (cpu+1)*sampleSize > len(s.mem) {
		return fmt.Errorf("read sample: cpu %d out of range", cpu)
	}
	if !s.armed[cpu].Load() {
		return fmt.Errorf("read sample of cpu %d: %w", cpu, ErrNotArmed)
	}
	base := unsafe.Pointer(&s.mem[cpu*sampleSize])
	seq := (*uint64)(base) // the element's first word (offset checked in cpubpf_test.go)
	src := (*[sampleSize / 8]uint64)(base)
	dst := (*[sampleSize / 8]uint64)(unsafe.Pointer(out))
	for range seqReads {
		a := atomic.LoadUint64(seq)
		if a&1 != 0 {
			continue
		}
		for i := range dst {
			dst[i] = atomic.LoadUint64(&src[i])
		}
		if atomic.LoadUint64(seq) == a && a != 0 && out.Cpu == uint64(cpu) {
			return nil
		}
	}
	return ErrNoSample
}

// Close stops the timers (freeing their map cancels them) and releases
// the programs and maps.
func (s *Sampler) Close() error {
	var errs []error
	if s.mem != nil {
		errs = append(errs, sys.Munmap(s.mem))
		s.mem = nil
	}
	errs = append(errs, s.objs.Close())
	return errors.Join(errs...)
}
