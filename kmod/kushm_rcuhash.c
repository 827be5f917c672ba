// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * The C twin of package rcuhash (docs/region-format.md §6).
 * Step names (I1..I6, D1..D4, U1..U3, L1..L8) are the spec's.
 */
#ifndef KUSHM_USERSPACE
#include <linux/kernel.h>
#include <linux/string.h>
#include <linux/log2.h>
#include <linux/overflow.h>
#include <linux/math64.h>
#endif
#include "kushm_rcuhash.h"

static u64 kushm_align(u64 v, u64 a)
{
	return (v + a - 1) / a * a;
}

/* plan - the layout of a table, exactly as rcuhash.plan computes it. */
static int plan(struct kushm_htab *t, const struct kushm_hgeom *g)
{
	u32 nslots = g->nslots ? g->nslots : 1;
	u32 nbuckets = 1;
	u64 v;

	if (g->capacity == 0 || g->capacity > KUSHM_MAX_HASH_CAPACITY)
		return -EINVAL;
	/* Buckets live in the nodes: nbuckets = capacity, a power of two. */
	while (nbuckets < g->capacity)
		nbuckets <<= 1;
	if (g->nbuckets && g->nbuckets != nbuckets)
		return -EINVAL;
	if (nslots > KUSHM_MAX_CPUS)
		return -EINVAL;
	if (!g->value_size || g->value_size % 8 || g->value_size > KUSHM_MAX_VALUE_SIZE)
		return -EINVAL;
	if (g->data_size % 8 || g->data_size > KUSHM_MAX_VALUE_SIZE)
		return -EINVAL;
	t->nbuckets = nbuckets;
	t->capacity = nbuckets;
	t->nslots = nslots;
	t->value_size = g->value_size;
	t->data_size = g->data_size;
	t->data_off = KUSHM_RCU_NODE_SIZE;
	t->slot_stride = KUSHM_SLOT_HEAD_SIZE + g->value_size;
	t->slots_off = KUSHM_RCU_NODE_SIZE + g->data_size;
	if (nslots > 1) {
		/* Per-CPU writers: each slot on its own cache lines. */
		t->slot_stride = kushm_align(t->slot_stride, KUSHM_CACHE_LINE);
		t->slots_off = kushm_align(t->slots_off, KUSHM_CACHE_LINE);
	}
	v = kushm_align((u64)t->slots_off + (u64)nslots * t->slot_stride, KUSHM_CACHE_LINE);
	if (v > 0xffffffffULL)
		return -EINVAL;
	t->node_size = v;
	t->buckets_off = 0;
	t->nodes_off = KUSHM_HASH_HEADER_SIZE;
	t->size = (u64)t->nodes_off + (u64)t->capacity * t->node_size;
	return 0;
}

/**
 * kushm_htab_size - bytes a table of geometry @g needs.
 * @g: the geometry.
 * Return: the size, 0 when @g is invalid.
 */
u64 kushm_htab_size(const struct kushm_hgeom *g)
{
	struct kushm_htab t;

	if (plan(&t, g))
		return 0;
	return t.size;
}

/**
 * kushm_htab_format - lay out an empty table in @sec (zeroed memory).
 * @t: the view to fill in.
 * @sec: the section's memory, zeroed.
 * @size: bytes of @sec.
 * @g: the geometry (the capacity is rounded up to a power of two).
 * @free: the writer's free stack, kushm_htab_size(@g)'s capacity entries:
 *        at least the next power of two >= @g->capacity.
 * @pos: positions in @free, as many entries.
 *
 * Every node starts free (odd seq) and every bucket empty, as
 * rcuhash.initTable does; the free set is writer-private.
 * Return: 0, or -EINVAL when @g is invalid or does not fit in @size.
 */
int kushm_htab_format(struct kushm_htab *t, void *sec, u64 size, const struct kushm_hgeom *g,
		      u32 *free, s32 *pos)
{
	struct kushm_hash_header *h = sec;
	int err;
	u32 i;

	err = plan(t, g);
	if (err)
		return err;
	if (t->size > size)
		return -EINVAL;
	t->base = sec;
	h->nbuckets = t->nbuckets;
	h->capacity = t->capacity;
	h->node_size = t->node_size;
	h->nslots = t->nslots;
	h->value_size = t->value_size;
	h->slots_off = t->slots_off;
	h->slot_stride = t->slot_stride;
	h->data_off = t->data_off;
	h->data_size = t->data_size;
	h->buckets_off = t->buckets_off;
	h->nodes_off = t->nodes_off;
	t->free = free;
	t->pos = pos;
	t->nfree = 0;
	/* Pushed in reverse so that pops hand out low indexes first. */
	for (i = t->capacity; i-- > 0;) {
		kushm_htab_node(t, i)->seq = 1;
		kushm_htab_release(t, i);
	}
	h->magic = KUSHM_HASH_MAGIC;
	return 0;
}

/**
 * kushm_htab_attach - validate a table someone else formatted (a reader's
 * view): every geometry field is checked against @size in 64 bits.
 * @t: the view to fill in.
 * @sec: the section's memory.
 * @size: bytes of @sec.
 * Return: 0, or -EINVAL when the header is not a valid table.
 */
int kushm_htab_attach(struct kushm_htab *t, void *sec, u64 size)
{
	const struct kushm_hash_header *h = sec;
	struct kushm_hgeom g;
	struct kushm_htab want;

	if (size < KUSHM_HASH_HEADER_SIZE || READ_ONCE(h->magic) != KUSHM_HASH_MAGIC)
		return -EINVAL;
	g.capacity = READ_ONCE(h->capacity);
	g.nbuckets = READ_ONCE(h->nbuckets);
	g.nslots = READ_ONCE(h->nslots);
	g.value_size = READ_ONCE(h->value_size);
	g.data_size = READ_ONCE(h->data_size);
	if (!g.nbuckets || !g.nslots || plan(&want, &g))
		return -EINVAL;
	if (want.size > size || READ_ONCE(h->node_size) != want.node_size ||
	    READ_ONCE(h->slots_off) != want.slots_off ||
	    READ_ONCE(h->slot_stride) != want.slot_stride ||
	    READ_ONCE(h->data_off) != want.data_off ||
	    READ_ONCE(h->buckets_off) != want.buckets_off ||
	    READ_ONCE(h->nodes_off) != want.nodes_off)
		return -EINVAL;
	*t = want;
	t->base = sec;
	t->free = NULL;
	t->pos = NULL;
	t->nfree = 0;
	return 0;
}

static u32 *head(const struct kushm_htab *t, u32 b)
{
	return (u32 *)((u8 *)kushm_htab_node(t, b) + KUSHM_HNODE_HEAD_OFF);
}

/* take - remove node i from the free set. */
static void take(struct kushm_htab *t, u32 i)
{
	s32 p = t->pos[i];
	u32 last = t->free[t->nfree - 1];

	t->free[p] = last;
	t->pos[last] = p;
	t->nfree--;
	t->pos[i] = -1;
}

static u32 bucket_of(const struct kushm_htab *t, u64 key)
{
	return (u32)(kushm_hash(key) & (t->nbuckets - 1));
}

/**
 * kushm_htab_insert - I1..I6: insert @key (the structure writer only).
 * @t: the table.
 * @key: the key; must not be live already (the caller checks with find).
 * @data: immutable node data, @data_len bytes (clamped to the table's).
 * @data_len: bytes of @data.
 * @val: initial value of every slot (value_size bytes), or NULL for zero.
 * @idx: the node's index, when not NULL.
 * Return: 0, or -ENOSPC when the table is full (insert_full is counted).
 */
int kushm_htab_insert(struct kushm_htab *t, u64 key, const void *data, u32 data_len,
		      const void *val, u32 *idx)
{
	struct kushm_hash_header *h = kushm_htab_hdr(t);
	struct kushm_hnode *n;
	u32 i, b, j, w, *link;

	/* I1: the key's home node when free, else any free node. */
	if (t->nfree == 0) {
		WRITE_ONCE(h->insert_full, h->insert_full + 1);
		return -ENOSPC;
	}
	b = bucket_of(t, key);
	i = t->pos[b] >= 0 ? b : t->free[t->nfree - 1];
	take(t, i);
	n = kushm_htab_node(t, i);
	if (!(n->seq & 1))
		WRITE_ONCE(n->seq, n->seq + 1);	/* free nodes are odd */
	/* Keep the home key first: link after the home node when it heads. */
	link = head(t, b);
	if (READ_ONCE(*link) == b + 1 && i != b)
		link = &kushm_htab_node(t, b)->next;
	/* I2: n.seq is odd; readers that reach n retry. */
	WRITE_ONCE(n->key, key);
	WRITE_ONCE(n->bucket, b);
	if (data_len > t->data_size)
		data_len = t->data_size;
	if (t->data_size) {
		u8 *d = kushm_htab_data(t, i);

		memset(d, 0, t->data_size);
		if (data && data_len)
			memcpy(d, data, data_len);
	}
	for (j = 0; j < t->nslots; j++) {
		struct kushm_slot *s = kushm_htab_slot(t, i, j);
		u64 *v = kushm_slot_value(s);
		u32 vs = READ_ONCE(s->seq);

		for (w = 0; w < t->value_size / 8; w++)
			WRITE_ONCE(v[w], val ? ((const u64 *)val)[w] : 0);
		if (vs & 1)	/* left odd by a dead writer: even again */
			WRITE_ONCE(s->seq, vs + 1);
	}
	WRITE_ONCE(n->next, READ_ONCE(*link));
	smp_wmb();					/* I3 */
	WRITE_ONCE(n->seq, n->seq + 1);			/* I4: live */
	smp_wmb();					/* I5 */
	WRITE_ONCE(*link, i + 1);			/* I6: publish */
	WRITE_ONCE(h->count, h->count + 1);
	WRITE_ONCE(h->inserts, h->inserts + 1);
	if (idx)
		*idx = i;
	return 0;
}

/**
 * kushm_htab_unlink - D1..D3: unlink @key and mark its node dead (the
 * structure writer only). The node is not reusable until the caller hands
 * it to kushm_htab_release() after a grace period (D4).
 * @t: the table.
 * @key: the key.
 * @idx: the dead node's index.
 * Return: 0, or -ENOENT.
 */
int kushm_htab_unlink(struct kushm_htab *t, u64 key, u32 *idx)
{
	struct kushm_hash_header *h = kushm_htab_hdr(t);
	u32 b = bucket_of(t, key);
	u32 *link = head(t, b);
	u32 i = *link, steps = 0;

	while (i != 0 && i <= t->capacity && steps++ <= t->capacity) {
		struct kushm_hnode *n = kushm_htab_node(t, i - 1);

		if (!(n->seq & 1) && n->key == key) {
			WRITE_ONCE(*link, n->next);		/* D1 */
			smp_wmb();				/* D2 */
			WRITE_ONCE(n->seq, n->seq + 1);		/* D3: dead */
			WRITE_ONCE(h->count, h->count - 1);
			WRITE_ONCE(h->deletes, h->deletes + 1);
			*idx = i - 1;
			return 0;
		}
		link = &n->next;
		i = *link;
	}
	return -ENOENT;
}

/**
 * kushm_htab_release - D4: put dead node @idx back in the free set. The
 * caller waited a grace period since kushm_htab_unlink() (no kernel slot
 * writer can still hold it) and is the structure writer.
 * @t: the table.
 * @idx: the node.
 */
void kushm_htab_release(struct kushm_htab *t, u32 idx)
{
	if (idx >= t->capacity || (t->pos[idx] >= 0 && t->pos[idx] < (s32)t->nfree &&
				   t->free[t->pos[idx]] == idx))
		return;
	t->pos[idx] = t->nfree;
	t->free[t->nfree++] = idx;
}

/**
 * kushm_htab_set_data - S1..S4: replace the data of live node @idx in place
 * (the structure writer only). The node stays linked with its key and its
 * slots; its seq is odd while the data words are stored, so a reader that
 * reached it then restarts (L4) and one that copied data across the change
 * fails its final node-seq check (L6/L8): the data is never torn. Slot
 * writers keep writing their slots meanwhile (the slots' own seqcounts).
 * The Go twin is rcuhash.Table.SetData.
 * @t: the table.
 * @idx: a live node.
 * @data: the new data, @data_len bytes (clamped; the rest is zeroed).
 * @data_len: bytes of @data.
 */
void kushm_htab_set_data(struct kushm_htab *t, u32 idx, const void *data, u32 data_len)
{
	struct kushm_hnode *n;
	u64 *d, w;
	u32 s, i;

	if (idx >= t->capacity)
		return;
	n = kushm_htab_node(t, idx);
	s = n->seq;
	if (s & 1)
		return;				/* not live */
	if (data_len > t->data_size)
		data_len = t->data_size;
	d = kushm_htab_data(t, idx);
	WRITE_ONCE(n->seq, s + 1);		/* S1: odd, changing */
	smp_wmb();				/* S2: S1 before the data (pairs with L6/L8) */
	for (i = 0; i < t->data_size / 8; i++) {	/* S3 */
		u32 left = i * 8 < data_len ? data_len - i * 8 : 0;

		w = 0;
		memcpy(&w, (const u8 *)data + i * 8, left < 8 ? left : 8);
		WRITE_ONCE(d[i], w);
	}
	smp_wmb();				/* S3 before S4 */
	WRITE_ONCE(n->seq, s + 2);		/* S4: even, live again */
}

/*
 * walk - L1..L7: find the live node of @key. Returns 0 with *idx and the
 * node's seq, -ENOENT, -EAGAIN after KUSHM_MAX_RETRIES restarts, or
 * -EUCLEAN for a chain that is corrupt (out of range or a cycle).
 */
static int walk(const struct kushm_htab *t, u64 key, u32 *idx, u32 *seqp)
{
	u32 b = bucket_of(t, key);
	int tries;

	for (tries = 0; tries < KUSHM_MAX_RETRIES; tries++) {
		u32 i = READ_ONCE(*head(t, b));			/* L1 */
		u32 steps = 0;
		bool restart = false;

		while (i != 0) {				/* L2 */
			struct kushm_hnode *n;
			u32 s, nb, next;
			u64 k;

			if (i > t->capacity || ++steps > t->capacity)
				return -EUCLEAN;
			n = kushm_htab_node(t, i - 1);
			s = READ_ONCE(n->seq);			/* L3 */
			smp_rmb();
			if (s & 1) {				/* L4 */
				restart = true;
				break;
			}
			k = READ_ONCE(n->key);			/* L5 */
			nb = READ_ONCE(n->bucket);
			if (k == key && nb == b) {
				/* The caller's final seq check is L6. */
				*idx = i - 1;
				*seqp = s;
				return 0;
			}
			next = READ_ONCE(n->next);
			smp_rmb();				/* L6 */
			if (READ_ONCE(n->seq) != s || nb != b) {	/* L7 */
				restart = true;
				break;
			}
			i = next;
		}
		if (!restart)
			return -ENOENT;
	}
	return -EAGAIN;
}

/**
 * kushm_htab_find - the index of @key's live node, for its slot writers
 * (under rcu_read_lock in the kernel) and the structure writer.
 * @t: the table.
 * @key: the key.
 * @idx: the node's index.
 * Return: 0, -ENOENT, -EAGAIN or -EUCLEAN (see walk).
 */
int kushm_htab_find(const struct kushm_htab *t, u64 key, u32 *idx)
{
	int tries;

	for (tries = 0; tries < KUSHM_MAX_RETRIES; tries++) {
		u32 seq;
		int err = walk(t, key, idx, &seq);

		if (err)
			return err;
		smp_rmb();	/* L6: the node read before its seq re-check */
		if (READ_ONCE(kushm_htab_node(t, *idx)->seq) == seq)
			return 0;
	}
	return -EAGAIN;
}

/**
 * kushm_htab_lookup - L1..L8: read @key's value, merged over all slots,
 * without a lock; wait-free (bounded retries).
 * @t: the table.
 * @key: the key.
 * @out: the merged value (value_size bytes, at most out_len).
 * @out_len: bytes of @out; must be >= the table's value_size.
 * @merge: how slots combine (kushm_merge_sum, kushm_merge_syscall).
 * Return: 0, -ENOENT, -EAGAIN, -EUCLEAN, or -E2BIG when @out is too small
 * or the value larger than KUSHM_HTAB_MAX_READ_VALUE.
 */
int kushm_htab_lookup(const struct kushm_htab *t, u64 key, void *out, u32 out_len,
		      kushm_merge_fn merge)
{
	u64 tmp[KUSHM_HTAB_MAX_READ_VALUE / 8];

	return kushm_htab_lookup_tmp(t, key, out, out_len, merge, tmp, sizeof(tmp), t->value_size);
}

/**
 * kushm_htab_lookup_tmp - kushm_htab_lookup() copying each slot into the
 * caller's buffer @tmp (for values larger than the stack copy allows;
 * the syscalls table's histogram slots) before merging it into @out.
 * @t: the table.
 * @key: the key.
 * @out: the merged value; @merge decides its layout.
 * @out_len: bytes of @out; must be >= the table's value_size.
 * @merge: how slots combine.
 * @tmp: scratch of at least @len bytes, 8-byte aligned.
 * @tmp_len: bytes of @tmp.
 * @len: bytes of each slot's value to read and merge (a prefix of the
 *	value when smaller than value_size), a multiple of 8.
 * Return: as kushm_htab_lookup().
 */
int kushm_htab_lookup_tmp(const struct kushm_htab *t, u64 key, void *out, u32 out_len,
			  kushm_merge_fn merge, u64 *tmp, u32 tmp_len, u32 len)
{
	u32 words, size;
	int tries;

	size = len < t->value_size ? len : t->value_size;
	words = size / 8;
	if (out_len < size || size > tmp_len)
		return -E2BIG;
	for (tries = 0; tries < KUSHM_MAX_RETRIES; tries++) {
		struct kushm_hnode *n;
		u32 idx, s, j, w;
		bool again = false;
		int err;

		err = walk(t, key, &idx, &s);
		if (err)
			return err;
		n = kushm_htab_node(t, idx);
		for (j = 0; j < t->nslots && !again; j++) {	/* L8 */
			struct kushm_slot *sl = kushm_htab_slot(t, idx, j);
			const u64 *v = kushm_slot_value(sl);
			u32 v1 = READ_ONCE(sl->seq);

			if (v1 & 1) {
				again = true;
				break;
			}
			smp_rmb();	/* L8: slot seq before the value */
			for (w = 0; w < words; w++)
				tmp[w] = READ_ONCE(v[w]);
			smp_rmb();	/* L8: the value before the seq re-check */
			if (READ_ONCE(sl->seq) != v1) {
				again = true;
				break;
			}
			merge(out, tmp, size, j == 0);
		}
		if (again)
			continue;
		smp_rmb();	/* L8: slots before the node seq re-check */
		if (READ_ONCE(n->seq) == s)
			return 0;
	}
	return -EAGAIN;
}

/**
 * kushm_merge_sum - merge counter slots: word-wise sum.
 * @acc: the accumulator.
 * @val: one slot's value.
 * @size: bytes.
 * @first: @val is the first slot (copy instead of add).
 */
void kushm_merge_sum(void *acc, const void *val, u32 size, bool first)
{
	u64 *a = acc;
	const u64 *v = val;
	u32 i;

	for (i = 0; i < size / 8; i++)
		a[i] = first ? v[i] : a[i] + v[i];
}

static u64 kushm_sat_add(u64 a, u64 b)
{
	return a + b < a ? U64_MAX : a + b;
}

/*
 * kushm_cross_term - floor(d^2 * na * nb / n), exact and saturating: the
 * between-slots part of Chan et al.'s M2 (sysstat.CrossTerm in Go). With
 * x = d^2, q = floor(na*nb/n) and r = na*nb mod n it is x*q + floor(x*r/n).
 * Both divisions have quotients below 2^64 (q <= n/4 once na*nb/n is
 * checked to fit; x*r/n < x), as mul_u64_u64_div_u64's divq requires.
 */
static u64 kushm_cross_term(u64 d, u64 na, u64 nb, u64 n)
{
	unsigned __int128 x2, y, p;
	u64 x, q, r;

	if (!d || !na || !nb || n < 2)
		return 0;
	x2 = (unsigned __int128)d * d;
	if (x2 >> 64)
		return U64_MAX;
	x = (u64)x2;
	y = (unsigned __int128)na * nb;
	if ((u64)(y >> 64) >= n)
		return U64_MAX;	/* saturated counts: the quotient would not fit */
	q = mul_u64_u64_div_u64(na, nb, n);
	r = (u64)y - q * n;	/* < n, exact modulo 2^64 */
	p = (unsigned __int128)x * q;
	if (p >> 64)
		return U64_MAX;
	return kushm_sat_add((u64)p, mul_u64_u64_div_u64(x, r, n));
}

/**
 * kushm_merge_syscall - merge struct kushm_syscall_stat slots with Chan
 * et al.'s formula in integers (docs/helpers.md, "Merge of slots"): means
 * as floor(S/n), the cross term exact, everything saturating. The Go twin
 * is sysstat.MergeInto; TestCMergeMatchesGo checks they agree bit for bit.
 * @acc: the accumulator (struct kushm_syscall_stat).
 * @val: one slot's value.
 * @size: bytes (sizeof(struct kushm_syscall_stat) or more).
 * @first: @val is the first slot.
 */
void kushm_merge_syscall(void *acc, const void *val, u32 size, bool first)
{
	struct kushm_syscall_stat *a = acc;
	const struct kushm_syscall_stat *b = val;
	u64 ma, mb, d, n;

	if (size < sizeof(*a))
		return;
	if (first)
		memset(a, 0, sizeof(*a));
	if (!b->count)
		return;	/* an empty slot: skipped whole (region-format §4.1) */
	if (!a->count) {
		*a = *b;
		a->mean_ns = a->sum_ns / a->count;
		return;
	}
	ma = a->sum_ns / a->count;
	mb = b->sum_ns / b->count;
	d = ma > mb ? ma - mb : mb - ma;
	n = kushm_sat_add(a->count, b->count);
	a->m2 = kushm_sat_add(kushm_sat_add(a->m2, b->m2),
			      kushm_cross_term(d, a->count, b->count, n));
	a->count = n;
	a->sum_ns = kushm_sat_add(a->sum_ns, b->sum_ns);
	a->mean_ns = a->sum_ns / a->count;
	if (b->max_ns > a->max_ns)
		a->max_ns = b->max_ns;
	if (b->min_ns < a->min_ns)
		a->min_ns = b->min_ns;
	a->outliers = kushm_sat_add(a->outliers, b->outliers);
	a->last_ns = b->last_ns;
}
