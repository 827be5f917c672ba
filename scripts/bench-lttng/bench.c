// SPDX-License-Identifier: MIT
/*
 * LTTng-UST side of `make bench-lttng`: fires the kushm_bench:ev
 * tracepoint (64 u64 fields) ITERS times and prints ns/event. The filter
 * is the session's (lttng enable-event --filter), set by the script.
 */
#define LTTNG_UST_TRACEPOINT_DEFINE
#define LTTNG_UST_TRACEPOINT_CREATE_PROBES
#include "kushm_bench_tp.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 1000000;
	static struct kushm_bench_event ev;
	double t0;
	long i;

	for (i = 0; i < 64; i++)
		ev.f[i] = 1000 + i;
	for (i = 0; i < iters / 10; i++) /* warm up */
		lttng_ust_tracepoint(kushm_bench, ev, &ev);
	t0 = now_ns();
	for (i = 0; i < iters; i++)
		lttng_ust_tracepoint(kushm_bench, ev, &ev);
	printf("%.2f\n", (now_ns() - t0) / iters);
	return 0;
}
