/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Promela model of the rcuhash protocol (docs/region-format.md §6,
 * rcuhash/doc.go). One structure writer inserts, deletes, updates and
 * changes node data (S1..S4); two
 * readers look keys up concurrently, each statement being one aligned load
 * or store (sequential consistency: Go's sync/atomic, and the C twin's
 * READ_ONCE/WRITE_ONCE with the barriers at the numbered points).
 *
 * Checked (assertions; spin -a, pan with -DSAFETY):
 *   1. never torn:     a hit's two value words come from one update, and
 *                      its two node-data words from one insert or one data
 *                      change (SetData, S1..S4);
 *   2. no false hit:   a hit's value belongs to the key asked for;
 *   3. no missed key:  key 0, live for the whole run, is never "not found";
 *   4. bounded walk:   a walk never visits more than N nodes (so the Go
 *                      reader's "longer than capacity = corrupt" rule
 *                      never fires on a correct table).
 * One reader per run (check.sh runs READKEY=0 and READKEY=3): the state
 * space of two readers and a writer is too large to search exhaustively
 * on a CI machine, and readers never interact with each other.
 * Mutants (check.sh proves each is caught): MUTANT_NO_NODE_RECHECK drops
 * the node-seq re-check after copying a hit's value; MUTANT_NO_BUCKET_CHECK
 * drops L7, so a walk can follow a node recycled into another chain;
 * MUTANT_SETDATA_NO_ODD changes the data without making the node odd.
 * Keys (default): 0 (permanent, at home in bucket 0), 3 (collides with 0
 * in bucket 0), 1 (bucket 1). With -DPERM=3 -DKA=0 -DKB=1 -DPERMNODE=1 the
 * permanent key is displaced (not at home), so churning keys can stand in
 * front of it in its chain. The writer makes at most MAXOPS changes, so sequence
 * numbers never wrap in the model (32-bit wrap needs 2^31 recycles of one
 * node during a single lookup).
 */
#define N        3
#ifndef MAXOPS
#define MAXOPS   4
#endif
#ifndef READKEY
#define READKEY  0
#endif
/* PERM is live for the whole run; KA and KB churn. */
#ifndef PERM
#define PERM     0
#define KA       3
#define KB       1
#define PERMNODE 0
#endif
#define MAXTRY   3
#define FOUND    1
#define NOTFOUND 2
#define RETRY    3

byte seq[N];   /* node seq: even live, odd free/changing */
byte nxt[N];   /* next, index+1 */
byte key[N];
byte bkt[N];
byte head[N];  /* head of bucket i, index+1; lives in node i */
byte sseq[N];  /* slot seq */
byte v0[N];    /* value word 0 */
byte v1[N];    /* value word 1 */
byte d0[N];    /* node data word 0 */
byte d1[N];    /* node data word 1 */

/* writer-private */
bit  isfree[N];
byte where[4]; /* key -> node index+1 */

inline hash(k, b) { b = k % N }

inline insert(k, gen) {
	hash(k, b);
	/* I1: the home node if free, else any free node */
	if
	:: isfree[b] -> n = b
	:: else ->
		if
		:: isfree[0] -> n = 0
		:: isfree[1] -> n = 1
		:: isfree[2] -> n = 2
		fi
	fi;
	isfree[n] = 0;
	/* I2: fill while odd */
	key[n] = k;
	bkt[n] = b;
	sseq[n] = sseq[n] + (sseq[n] % 2); /* even */
	v0[n] = k * 16 + gen;
	v1[n] = k * 16 + gen;
	d0[n] = k * 16 + gen;
	d1[n] = k * 16 + gen;
	if
	:: head[b] == b + 1 && n != b -> linknext = 1; nxt[n] = nxt[b]
	:: else -> linknext = 0; nxt[n] = head[b]
	fi;
	seq[n] = seq[n] + 1;          /* I4: even, live */
	if                            /* I6: publish */
	:: linknext -> nxt[b] = n + 1
	:: else -> head[b] = n + 1
	fi;
	where[k] = n + 1
}

inline delete(k) {
	n = where[k] - 1;
	b = bkt[n];
	if
	:: head[b] == n + 1 -> head[b] = nxt[n]   /* D1 */
	:: else ->
		prev = head[b] - 1;
		do
		:: nxt[prev] == n + 1 -> break
		:: else -> prev = nxt[prev] - 1
		od;
		nxt[prev] = nxt[n]                /* D1 */
	fi;
	seq[n] = seq[n] + 1;                      /* D3: odd, dead */
	isfree[n] = 1;
	where[k] = 0
}

inline update(k, gen) {
	n = where[k] - 1;
	sseq[n] = sseq[n] + 1;                    /* U1 */
	v0[n] = k * 16 + gen;                     /* U2 */
	v1[n] = k * 16 + gen;
	sseq[n] = sseq[n] + 1                     /* U3 */
}

inline setdata(k, gen) {
	n = where[k] - 1;
#ifndef MUTANT_SETDATA_NO_ODD
	seq[n] = seq[n] + 1;                      /* S1: odd, changing */
#endif
	d0[n] = k * 16 + gen;                     /* S3 */
	d1[n] = k * 16 + gen;
#ifndef MUTANT_SETDATA_NO_ODD
	seq[n] = seq[n] + 1                       /* S4: even again */
#else
	skip
#endif
}

proctype Writer() {
	byte op = 0, n, b, prev;
	bit linknext;
	do
	:: op < MAXOPS ->
		op++;
		if
		:: update(PERM, op)
		:: where[KA] == 0 -> insert(KA, op)
		:: where[KA] != 0 -> delete(KA)
		:: where[KB] == 0 -> insert(KB, op)
		:: where[KB] != 0 -> delete(KB)
		:: where[KA] != 0 -> update(KA, op)
		:: setdata(PERM, op)
		fi
	:: else -> break
	od
}

proctype Reader(byte k) {
	byte tries = 0, b, i, p, s, kk, nb, nx, vs, a0, a1, e0, e1, steps, result;
retry:
	if
	:: tries == MAXTRY -> result = RETRY; goto done
	:: else -> tries++
	fi;
	hash(k, b);
	i = head[b];                              /* L1 */
	steps = 0;
	do
	:: i == 0 -> result = NOTFOUND; goto done
	:: i != 0 ->
		assert(i <= N);
		steps++;
		assert(steps <= N);               /* 4 */
		p = i - 1;
		s = seq[p];                       /* L3 */
		if
		:: s % 2 == 1 -> goto retry       /* L4 */
		:: else -> skip
		fi;
		kk = key[p];                      /* L5 */
		nb = bkt[p];
		if
		:: kk == k && nb == b ->
			vs = sseq[p];             /* L8 */
			if
			:: vs % 2 == 1 -> goto retry
			:: else -> skip
			fi;
			a0 = v0[p];
			a1 = v1[p];
			e0 = d0[p];               /* the node data (Read) */
			e1 = d1[p];
			if
			:: sseq[p] != vs -> goto retry
			:: else -> skip
			fi;
#ifndef MUTANT_NO_NODE_RECHECK
			if
			:: seq[p] != s -> goto retry
			:: else -> skip
			fi;
#endif
			result = FOUND;
			goto done
		:: else ->
			nx = nxt[p];
			if
#ifndef MUTANT_NO_BUCKET_CHECK
			:: seq[p] != s || nb != b -> goto retry   /* L6, L7 */
#else
			:: seq[p] != s -> goto retry
#endif
			:: else -> skip
			fi;
			i = nx
		fi
	od;
done:
	if
	:: result == FOUND ->
		assert(a0 == a1);                 /* 1: never torn */
		assert(e0 == e1);                 /* 1: data never torn */
		assert(e0 / 16 == k);
		assert(a0 / 16 == k)              /* 2: no false hit */
	:: result == NOTFOUND ->
		assert(k != PERM)                 /* 3: no missed live key */
	:: else -> skip
	fi
}

init {
	atomic {
		/* all nodes free (odd), then PERM inserted at PERMNODE */
		seq[0] = 1; seq[1] = 1; seq[2] = 1;
		isfree[0] = 1; isfree[1] = 1; isfree[2] = 1;
		key[PERMNODE] = PERM; bkt[PERMNODE] = PERM % N;
		v0[PERMNODE] = PERM * 16; v1[PERMNODE] = PERM * 16;
		d0[PERMNODE] = PERM * 16; d1[PERMNODE] = PERM * 16;
		seq[PERMNODE] = 2; head[PERM % N] = PERMNODE + 1;
		isfree[PERMNODE] = 0; where[PERM] = PERMNODE + 1;
		run Writer();
		run Reader(READKEY)
	}
}
