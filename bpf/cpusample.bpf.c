// SPDX-License-Identifier: GPL-2.0
/*
 * Per-CPU counter samples taken on the CPU they count: no cross-CPU call.
 *
 * A daemon reading CPU n's perf events with read(2) from another CPU
 * makes the kernel interrupt CPU n (smp_call_function_single) and spin
 * until CPU n answers; in a VM with CPU n halted that costs tens of
 * microseconds per read, per CPU, per tick (docs/benchmarks.md, "the
 * daemon at 10 ms"). Here every CPU runs a BPF timer pinned to it
 * (BPF_F_TIMER_CPU_PIN, 6.7+) that fires once per sampling interval and
 * reads that CPU's events locally (bpf_perf_event_read_value: value,
 * time enabled, time running) into the CPU's element of an mmapable
 * array, which the daemon copies with plain loads.
 *
 * A timer is armed from the CPU it runs on: arm (tp_btf/sched_switch),
 * attached only until every CPU has armed its timer (the loader makes
 * each CPU switch), arms this CPU's timer at its first switch. The
 * callback re-arms the timer for the next interval (read from the
 * config array, so the loader can change it). A timer that finds itself
 * on another CPU (its own went offline) stops; the loader's Rearm
 * attaches arm again to restart it once its CPU is back. Freeing the
 * timers map (the loader's Close) cancels the timers.
 *
 * Each element is written under a sequence count: seq is odd while the
 * callback writes it. Only this CPU's timer writes its element (a
 * callback does not run twice at once), so seq is read plainly; it is
 * stored with an exchange (BPF_XCHG), a full barrier on every JIT (x86
 * xchg, arm64 swpal or a ldaxr/stlxr loop with a dmb): the stores
 * between the two exchanges are not visible before the first nor after
 * the second. A reader copies between two equal even reads of seq
 * (internal/cpubpf, Read).
 *
 * Event slot k of CPU c is at index c of the perf event array evK (one
 * array per slot: a perf event array holds at most one entry per CPU;
 * the loader fills them; an empty index reads as an error and its valid
 * bit stays clear).
 */
#include "vmlite.h"

#define KUSHM_CS_SLOTS 24

/* One CPU's latest sample (cpubpf.Sample); 8 + 3 * 24 words. */
struct cpu_sample {
	__u64 seq;      /* odd while the callback writes this element */
	__u64 time_ns;  /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) at the sample */
	__u64 samples;  /* samples taken on this CPU */
	__u64 valid;    /* bit k: val[k], enabled[k], running[k] read this time */
	__u64 cpu;      /* the CPU that wrote it (a check for the reader) */
	__u64 pad[3];
	__u64 val[KUSHM_CS_SLOTS];
	__u64 enabled[KUSHM_CS_SLOTS];
	__u64 running[KUSHM_CS_SLOTS];
};

/* A CPU's timer and how arming it went (cpubpf.timerState). */
struct cpu_timer {
	struct bpf_timer timer;
	/* 0: not yet; 1: armed; 2: arming failed (err holds why); 3: stopped
	 * (it fired on another CPU, or its re-arm failed): arm starts it
	 * again at its CPU's next switch while attached */
	__u64 armed;
	__s64 err;   /* the failing helper's return value */
	__u64 rearm_err; /* re-arms that failed (the timer then stops) */
	__u64 moved; /* times it fired on another CPU (its CPU went offline) */
};

/* Set before load: the slots 0..nslots-1 in use. */
volatile const __u32 nslots = 0;

KUSHM_EVENT_ARRAY(ev0);
KUSHM_EVENT_ARRAY(ev1);
KUSHM_EVENT_ARRAY(ev2);
KUSHM_EVENT_ARRAY(ev3);
KUSHM_EVENT_ARRAY(ev4);
KUSHM_EVENT_ARRAY(ev5);
KUSHM_EVENT_ARRAY(ev6);
KUSHM_EVENT_ARRAY(ev7);
KUSHM_EVENT_ARRAY(ev8);
KUSHM_EVENT_ARRAY(ev9);
KUSHM_EVENT_ARRAY(ev10);
KUSHM_EVENT_ARRAY(ev11);
KUSHM_EVENT_ARRAY(ev12);
KUSHM_EVENT_ARRAY(ev13);
KUSHM_EVENT_ARRAY(ev14);
KUSHM_EVENT_ARRAY(ev15);
KUSHM_EVENT_ARRAY(ev16);
KUSHM_EVENT_ARRAY(ev17);
KUSHM_EVENT_ARRAY(ev18);
KUSHM_EVENT_ARRAY(ev19);
KUSHM_EVENT_ARRAY(ev20);
KUSHM_EVENT_ARRAY(ev21);
KUSHM_EVENT_ARRAY(ev22);
KUSHM_EVENT_ARRAY(ev23);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1); /* set by the loader: possible CPUs */
	__type(key, __u32);
	__type(value, struct cpu_sample);
} samples SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* set by the loader: possible CPUs */
	__type(key, __u32);
	__type(value, struct cpu_timer);
} timers SEC(".maps");

/* config[0]: the sampling interval in ns (the loader writes it). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} config SEC(".maps");

static __always_inline __u64 interval_ns(void)
{
	__u32 z = 0;
	__u64 *iv = bpf_map_lookup_elem(&config, &z);

	if (!iv || *iv < 1000000) /* at least 1 ms, whatever was written */
		return 1000000;
	return *iv;
}

static int sample(void *map, __u32 *key, struct cpu_timer *t)
{
	struct bpf_perf_event_value v;
	struct cpu_sample *s;
	__u32 cpu = bpf_get_smp_processor_id();
	__u64 valid = 0, seq;

	if (cpu != *key) {
		/* Its CPU went offline and the kernel moved the timer here
		 * (hrtimers of a dying CPU migrate). Stop: this CPU has its
		 * own timer, and the element to write is the key's, which
		 * can only be read on that CPU. arm restarts it there. */
		t->moved++;
		t->armed = 3;
		return 0;
	}
	s = bpf_map_lookup_elem(&samples, &cpu);
	if (s) {
		seq = s->seq & ~1ULL;
		/* odd: a reader retries; a full barrier before the stores below */
		__sync_lock_test_and_set(&s->seq, seq + 1);
#define READ_SLOT(k)                                                          \
	if (k < nslots &&                                                     \
	    !bpf_perf_event_read_value(&ev##k, BPF_F_CURRENT_CPU, &v, sizeof(v))) { \
		s->val[k] = v.counter;                                        \
		s->enabled[k] = v.enabled;                                    \
		s->running[k] = v.running;                                    \
		valid |= 1ULL << k;                                           \
	}
		READ_SLOT(0) READ_SLOT(1) READ_SLOT(2) READ_SLOT(3)
		READ_SLOT(4) READ_SLOT(5) READ_SLOT(6) READ_SLOT(7)
		READ_SLOT(8) READ_SLOT(9) READ_SLOT(10) READ_SLOT(11)
		READ_SLOT(12) READ_SLOT(13) READ_SLOT(14) READ_SLOT(15)
		READ_SLOT(16) READ_SLOT(17) READ_SLOT(18) READ_SLOT(19)
		READ_SLOT(20) READ_SLOT(21) READ_SLOT(22) READ_SLOT(23)
		s->valid = valid;
		s->time_ns = bpf_ktime_get_ns();
		s->cpu = cpu;
		s->samples++;
		/* even: done; a full barrier after the stores above */
		__sync_lock_test_and_set(&s->seq, seq + 2);
	}
	if (bpf_timer_start(&t->timer, interval_ns(), BPF_F_TIMER_CPU_PIN)) {
		t->rearm_err++;
		t->armed = 3;
	}
	return 0;
}

SEC("tp_btf/sched_switch")
int arm(__u64 *ctx)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct cpu_timer *t;
	long err;

	t = bpf_map_lookup_elem(&timers, &cpu);
	if (!t || t->armed == 1 || t->armed == 2)
		return 0;
	/* Only this CPU arms its timer, and a switch does not nest: armed
	 * is written once per arming, when it is over (the loader reads it
	 * from another CPU meanwhile: 0 or 3 means not yet). A stopped
	 * timer (3) is initialised already and its callback is done with
	 * it: the callback stored 3 last, and a timer does not fire again
	 * until started. */
	if (t->armed == 0) {
		err = bpf_timer_init(&t->timer, &timers, KUSHM_CLOCK_MONOTONIC);
		if (!err)
			err = bpf_timer_set_callback(&t->timer, sample);
		if (err)
			goto out;
	}
	err = bpf_timer_start(&t->timer, interval_ns(), BPF_F_TIMER_CPU_PIN);
out:
	t->err = err;
	t->armed = err ? 2 : 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
