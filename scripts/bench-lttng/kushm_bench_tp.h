/* SPDX-License-Identifier: MIT */
/*
 * The filter benchmark's event (../shared/bench/filter-bench.md, version
 * 2) as an LTTng-UST tracepoint: 64 u64 fields, f[i] = 1000 + i.
 */
#undef LTTNG_UST_TRACEPOINT_PROVIDER
#define LTTNG_UST_TRACEPOINT_PROVIDER kushm_bench

#undef LTTNG_UST_TRACEPOINT_INCLUDE
#define LTTNG_UST_TRACEPOINT_INCLUDE "./kushm_bench_tp.h"

#ifndef KUSHM_BENCH_EVENT
#define KUSHM_BENCH_EVENT
#include <stdint.h>

struct kushm_bench_event {
	uint64_t f[64];
};
#endif

#if !defined(KUSHM_BENCH_TP_H) || defined(LTTNG_UST_TRACEPOINT_HEADER_MULTI_READ)
#define KUSHM_BENCH_TP_H

#include <lttng/tracepoint.h>

LTTNG_UST_TRACEPOINT_EVENT(
	kushm_bench,
	ev,
	LTTNG_UST_TP_ARGS(const struct kushm_bench_event *, e),
	LTTNG_UST_TP_FIELDS(
		lttng_ust_field_integer(uint64_t, f0, e->f[0])
		lttng_ust_field_integer(uint64_t, f1, e->f[1])
		lttng_ust_field_integer(uint64_t, f2, e->f[2])
		lttng_ust_field_integer(uint64_t, f3, e->f[3])
		lttng_ust_field_integer(uint64_t, f4, e->f[4])
		lttng_ust_field_integer(uint64_t, f5, e->f[5])
		lttng_ust_field_integer(uint64_t, f6, e->f[6])
		lttng_ust_field_integer(uint64_t, f7, e->f[7])
		lttng_ust_field_integer(uint64_t, f8, e->f[8])
		lttng_ust_field_integer(uint64_t, f9, e->f[9])
		lttng_ust_field_integer(uint64_t, f10, e->f[10])
		lttng_ust_field_integer(uint64_t, f11, e->f[11])
		lttng_ust_field_integer(uint64_t, f12, e->f[12])
		lttng_ust_field_integer(uint64_t, f13, e->f[13])
		lttng_ust_field_integer(uint64_t, f14, e->f[14])
		lttng_ust_field_integer(uint64_t, f15, e->f[15])
		lttng_ust_field_integer(uint64_t, f16, e->f[16])
		lttng_ust_field_integer(uint64_t, f17, e->f[17])
		lttng_ust_field_integer(uint64_t, f18, e->f[18])
		lttng_ust_field_integer(uint64_t, f19, e->f[19])
		lttng_ust_field_integer(uint64_t, f20, e->f[20])
		lttng_ust_field_integer(uint64_t, f21, e->f[21])
		lttng_ust_field_integer(uint64_t, f22, e->f[22])
		lttng_ust_field_integer(uint64_t, f23, e->f[23])
		lttng_ust_field_integer(uint64_t, f24, e->f[24])
		lttng_ust_field_integer(uint64_t, f25, e->f[25])
		lttng_ust_field_integer(uint64_t, f26, e->f[26])
		lttng_ust_field_integer(uint64_t, f27, e->f[27])
		lttng_ust_field_integer(uint64_t, f28, e->f[28])
		lttng_ust_field_integer(uint64_t, f29, e->f[29])
		lttng_ust_field_integer(uint64_t, f30, e->f[30])
		lttng_ust_field_integer(uint64_t, f31, e->f[31])
		lttng_ust_field_integer(uint64_t, f32, e->f[32])
		lttng_ust_field_integer(uint64_t, f33, e->f[33])
		lttng_ust_field_integer(uint64_t, f34, e->f[34])
		lttng_ust_field_integer(uint64_t, f35, e->f[35])
		lttng_ust_field_integer(uint64_t, f36, e->f[36])
		lttng_ust_field_integer(uint64_t, f37, e->f[37])
		lttng_ust_field_integer(uint64_t, f38, e->f[38])
		lttng_ust_field_integer(uint64_t, f39, e->f[39])
		lttng_ust_field_integer(uint64_t, f40, e->f[40])
		lttng_ust_field_integer(uint64_t, f41, e->f[41])
		lttng_ust_field_integer(uint64_t, f42, e->f[42])
		lttng_ust_field_integer(uint64_t, f43, e->f[43])
		lttng_ust_field_integer(uint64_t, f44, e->f[44])
		lttng_ust_field_integer(uint64_t, f45, e->f[45])
		lttng_ust_field_integer(uint64_t, f46, e->f[46])
		lttng_ust_field_integer(uint64_t, f47, e->f[47])
		lttng_ust_field_integer(uint64_t, f48, e->f[48])
		lttng_ust_field_integer(uint64_t, f49, e->f[49])
		lttng_ust_field_integer(uint64_t, f50, e->f[50])
		lttng_ust_field_integer(uint64_t, f51, e->f[51])
		lttng_ust_field_integer(uint64_t, f52, e->f[52])
		lttng_ust_field_integer(uint64_t, f53, e->f[53])
		lttng_ust_field_integer(uint64_t, f54, e->f[54])
		lttng_ust_field_integer(uint64_t, f55, e->f[55])
		lttng_ust_field_integer(uint64_t, f56, e->f[56])
		lttng_ust_field_integer(uint64_t, f57, e->f[57])
		lttng_ust_field_integer(uint64_t, f58, e->f[58])
		lttng_ust_field_integer(uint64_t, f59, e->f[59])
		lttng_ust_field_integer(uint64_t, f60, e->f[60])
		lttng_ust_field_integer(uint64_t, f61, e->f[61])
		lttng_ust_field_integer(uint64_t, f62, e->f[62])
		lttng_ust_field_integer(uint64_t, f63, e->f[63])
	)
)

#endif /* KUSHM_BENCH_TP_H */

#include <lttng/tracepoint-event.h>
