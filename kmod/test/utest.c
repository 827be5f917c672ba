// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * utest - the C twin of rcuhash in userspace, driven by the Go test
 * internal/modload TestCTwin* against the Go implementation:
 *
 *   utest read IMAGE KEY...   attach to a table Go wrote; print, per key,
 *                             "KEY ok W0 W1 ..." (slots summed) or "KEY ERRNO"
 *   utest write IMAGE CAP NSLOTS VALUE DATA
 *                             format a table, insert keys 1..CAP/2 (data
 *                             word 0 = key, slot j word w = key*1000+j*100+w),
 *                             replace the data of keys divisible by 5 in
 *                             place (set_data: word 0 = key+100000),
 *                             delete keys divisible by 7, release them, insert
 *                             keys 5000+i into the freed nodes; write IMAGE
 *   utest arrwrite FILE OFF STRIDE ROWS SLOTS
 *                             update every row of the atomicarr section at
 *                             OFF of FILE in place: time 42+r, slot i
 *                             r*1000+i, every slot valid but slot 1
 *   utest arrread FILE OFF STRIDE ROWS SLOTS
 *                             print "ROW TIME VALID V0 V1 ..." per row
 *   utest hidx                each stdin line a latency: print its bucket
 *   utest hist                each stdin line "GMODE GKX100 GWARMUP GQPPM
 *                             GFACTOR WORD H | SAMPLES | SAMPLES ...": record
 *                             each group of samples (X, X! for an outlier,
 *                             X*N or X!*N for N of them) into its own slot
 *                             with decay shift H, merge the slots, print
 *                             the slots, the merge and the threshold
 */
#include <stdio.h>
#include <stdlib.h>
#include <inttypes.h>
#include "kushm_rcuhash.h"
#include "kushm_atomicarr.h"
#include "kushm_hist.h"

static int readfile(const char *p, u8 **buf, u64 *n)
{
	FILE *f = fopen(p, "rb");
	long sz;

	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	*buf = calloc(1, sz + 1);
	*n = fread(*buf, 1, sz, f);
	fclose(f);
	return 0;
}

static int cmd_read(int argc, char **argv)
{
	struct kushm_htab t;
	u64 n, out[KUSHM_HTAB_MAX_READ_VALUE / 8];
	u8 *buf;
	int i, err;
	u32 w;

	if (readfile(argv[2], &buf, &n))
		return 2;
	err = kushm_htab_attach(&t, buf, n);
	if (err) {
		printf("attach %d\n", err);
		return 1;
	}
	for (i = 3; i < argc; i++) {
		u64 key = strtoull(argv[i], NULL, 0);

		err = kushm_htab_lookup(&t, key, out, sizeof(out), kushm_merge_sum);
		if (err) {
			printf("%" PRIu64 " %d\n", key, err);
			continue;
		}
		printf("%" PRIu64 " ok", key);
		for (w = 0; w < t.value_size / 8; w++)
			printf(" %" PRIu64, out[w]);
		printf("\n");
	}
	return 0;
}

static int cmd_write(char **argv)
{
	struct kushm_hgeom g = {
		.capacity = atoi(argv[3]), .nslots = atoi(argv[4]),
		.value_size = atoi(argv[5]), .data_size = atoi(argv[6]),
	};
	struct kushm_htab t;
	u64 size = kushm_htab_size(&g), key, data[64] = {};
	u8 *mem = calloc(1, size);
	u32 *free = calloc(g.capacity * 2, sizeof(u32));
	s32 *pos = calloc(g.capacity * 2, sizeof(s32));
	u32 idx, j, w, i;
	FILE *f;

	if (!size || kushm_htab_format(&t, mem, size, &g, free, pos))
		return 2;
	for (key = 1; key <= t.capacity / 2; key++) {
		data[0] = key;
		if (kushm_htab_insert(&t, key, data, g.data_size, NULL, &idx))
			return 3;
		for (j = 0; j < t.nslots; j++) {
			struct kushm_slot *s = kushm_htab_slot(&t, idx, j);
			u32 seq = kushm_slot_begin(s);

			for (w = 0; w < t.value_size / 8; w++)
				kushm_slot_value(s)[w] = key * 1000 + j * 100 + w;
			kushm_slot_end(s, seq);
		}
	}
	/* S1..S4: keys divisible by 5 get new data in place (slots kept). */
	for (key = 5; key <= t.capacity / 2; key += 5) {
		data[0] = key + 100000;
		if (kushm_htab_find(&t, key, &idx))
			return 8;
		kushm_htab_set_data(&t, idx, data, g.data_size);
		if (kushm_htab_node(&t, idx)->seq & 1)
			return 9;
	}
	for (key = 7; key <= t.capacity / 2; key += 7) {
		if (kushm_htab_unlink(&t, key, &idx))
			return 4;
		kushm_htab_release(&t, idx);
	}
	for (i = 0; i < t.capacity / 2 / 7; i++) {
		data[0] = 5000 + i;
		if (kushm_htab_insert(&t, 5000 + i, data, g.data_size, NULL, &idx))
			return 5;
	}
	/* The table is now full but for the free nodes: check the refusal. */
	while (t.nfree)
		kushm_htab_insert(&t, 9000 + t.nfree, NULL, 0, NULL, NULL);
	if (kushm_htab_insert(&t, 99999, NULL, 0, NULL, NULL) != -ENOSPC ||
	    kushm_htab_hdr(&t)->insert_full != 1)
		return 6;
	f = fopen(argv[2], "wb");
	if (!f || fwrite(mem, 1, size, f) != size)
		return 7;
	fclose(f);
	return 0;
}

static int cmd_arr(char **argv, bool write)
{
	struct kushm_arr a = {
		.stride = atoi(argv[4]), .rows = atoi(argv[5]), .slots = atoi(argv[6]),
	};
	u64 off = strtoull(argv[3], NULL, 0), n, vals[64], valid, tm;
	u32 r, i;
	u8 *buf;
	FILE *f;

	if (a.slots > 64 || readfile(argv[2], &buf, &n) || off + (u64)a.stride * a.rows > n)
		return 2;
	a.base = buf + off;
	for (r = 0; r < a.rows; r++) {
		if (write) {
			for (i = 0; i < a.slots; i++)
				vals[i] = r * 1000 + i;
			valid = ((a.slots == 64 ? 0 : 1ULL << a.slots) - 1) & ~2ULL;
			kushm_arr_update(&a, r, 42 + r, valid, vals, a.slots);
			continue;
		}
		if (kushm_arr_snapshot(&a, r, &tm, &valid, vals, a.slots))
			return 3;
		printf("%u %" PRIu64 " %" PRIu64, r, tm, valid);
		for (i = 0; i < a.slots; i++)
			printf(" %" PRIu64, vals[i]);
		printf("\n");
	}
	if (!write)
		return 0;
	f = fopen(argv[2], "r+b");
	if (!f || fseek(f, off, SEEK_SET) ||
	    fwrite(buf + off, 1, (u64)a.stride * a.rows, f) != (u64)a.stride * a.rows)
		return 4;
	fclose(f);
	return 0;
}

/*
 * cmd_merge - each stdin line is a list of syscall-stat slots (8 words
 * each: count sum mean m2 max min outliers last); prints the merge.
 */
static int cmd_merge(void)
{
	char line[65536];

	while (fgets(line, sizeof(line), stdin)) {
		struct kushm_syscall_stat acc, slot;
		char *p = line, *end;
		bool first = true;
		u64 w[8];
		int i;

		memset(&acc, 0, sizeof(acc));
		for (;;) {
			for (i = 0; i < 8; i++) {
				w[i] = strtoull(p, &end, 10);
				if (end == p)
					break;
				p = end;
			}
			if (i < 8)
				break;
			slot = (struct kushm_syscall_stat){ .count = w[0], .sum_ns = w[1], .mean_ns = w[2],
				.m2 = w[3], .max_ns = w[4], .min_ns = w[5], .outliers = w[6], .last_ns = w[7] };
			kushm_merge_syscall(&acc, &slot, sizeof(slot), first);
			first = false;
		}
		printf("%llu %llu %llu %llu %llu %llu %llu %llu\n",
		       (unsigned long long)acc.count, (unsigned long long)acc.sum_ns,
		       (unsigned long long)acc.mean_ns, (unsigned long long)acc.m2,
		       (unsigned long long)acc.max_ns, (unsigned long long)acc.min_ns,
		       (unsigned long long)acc.outliers, (unsigned long long)acc.last_ns);
	}
	return 0;
}

static int cmd_hidx(void)
{
	char line[64];

	while (fgets(line, sizeof(line), stdin))
		printf("%u\n", kushm_hist_index(strtoull(line, NULL, 10)));
	return 0;
}

static void print_slot(const struct kushm_syscall_slot *s)
{
	const struct kushm_syscall_stat *t = &s->stat;
	u32 i;

	printf("%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
	       " %" PRIu64 " %" PRIu64 " %" PRIu64, (u64)t->count, (u64)t->mean_ns, (u64)t->m2,
	       (u64)t->max_ns, (u64)t->min_ns, (u64)t->sum_ns, (u64)t->outliers, (u64)t->last_ns,
	       (u64)s->total, (u64)s->decays);
	for (i = 0; i < KUSHM_SYSCALL_HIST_BUCKETS; i++)
		if (s->buckets[i])
			printf(" b%u=%u", i, s->buckets[i]);
	printf("\n");
}

#define HIST_MAX_SLOTS 16

static int cmd_hist(void)
{
	static char line[1 << 20];
	static struct kushm_syscall_slot slots[HIST_MAX_SLOTS];
	static struct kushm_syscall_merged m;

	while (fgets(line, sizeof(line), stdin)) {
		unsigned int gmode, gkx, gwarm, gq, gf, h;
		unsigned long long word;
		struct kushm_policy p;
		char *tok, *save = NULL;
		int n = 0, i, k;
		u32 b;

		if (sscanf(line, "%u %u %u %u %u %llu %u", &gmode, &gkx, &gwarm, &gq, &gf, &word,
			   &h) != 7)
			return 2;
		memset(slots, 0, sizeof(slots));
		strtok_r(line, "|", &save); /* the head and the first slot's "|" */
		while ((tok = strtok_r(NULL, " \n", &save))) {
			char *e;
			u64 x, cnt = 1;
			bool out;

			if (!strcmp(tok, "|")) {
				if (++n >= HIST_MAX_SLOTS)
					return 2;
				continue;
			}
			x = strtoull(tok, &e, 10);
			out = *e == '!';
			if (out)
				e++;
			if (*e == '*')
				cnt = strtoull(e + 1, NULL, 10);
			while (cnt--)
				kushm_slot_record(&slots[n], x, out, h);
		}
		for (i = 0; i <= n; i++)
			kushm_merge_syscall_slot(&m, &slots[i], sizeof(slots[i]), i == 0);
		kushm_policy_of(&p, gmode, gkx, gwarm, gq, gf, word);
		for (i = 0; i <= n; i++)
			print_slot(&slots[i]);
		printf("merged %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
		       " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64,
		       (u64)m.stat.count, (u64)m.stat.mean_ns, (u64)m.stat.m2, (u64)m.stat.max_ns,
		       (u64)m.stat.min_ns, (u64)m.stat.sum_ns, (u64)m.stat.outliers,
		       (u64)m.stat.last_ns, m.total, m.decays);
		for (b = 0; b < KUSHM_SYSCALL_HIST_BUCKETS; b++)
			if (m.buckets[b])
				printf(" b%u=%" PRIu64, b, m.buckets[b]);
		k = printf(" policy %u %" PRIu64 " %u %" PRIu64 " %" PRIu64 " threshold %" PRIu64 "\n",
			   p.mode, p.kx100, p.qppm, p.factor_x1000, p.warmup,
			   kushm_policy_threshold(&m, &p));
		if (k < 0)
			return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "hidx"))
		return cmd_hidx();
	if (argc == 2 && !strcmp(argv[1], "hist"))
		return cmd_hist();
	if (argc == 2 && !strcmp(argv[1], "merge"))
		return cmd_merge();
	if (argc == 7 && !strcmp(argv[1], "arrwrite"))
		return cmd_arr(argv, true);
	if (argc == 7 && !strcmp(argv[1], "arrread"))
		return cmd_arr(argv, false);
	if (argc >= 3 && !strcmp(argv[1], "read"))
		return cmd_read(argc, argv);
	if (argc == 7 && !strcmp(argv[1], "write"))
		return cmd_write(argv);
	fprintf(stderr, "usage: utest read IMAGE KEY... | utest write IMAGE CAP NSLOTS VALUE DATA\n");
	return 2;
}
