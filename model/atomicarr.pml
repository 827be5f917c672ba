/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Promela model of the atomicarr row seqcount (docs/region-format.md §5,
 * atomicarr/doc.go): one writer per row (W1..W5), readers snapshot the
 * row (R1..R5). Checked: a snapshot that passes R5 holds the values of
 * exactly one completed update (guarantee 1), and a reader takes at most
 * MAXTRY attempts (guarantee 2). The writer makes MAXOPS updates, so the
 * seqcount does not wrap in the model.
 */
#define MAXOPS 4
#define MAXTRY 3

byte rseq;
byte slot0, slot1, stamp;

proctype Writer() {
	byte op = 0;
	do
	:: op < MAXOPS ->
		op++;
		rseq = rseq + 1;   /* W1 (W2: ordered) */
		stamp = op;        /* W3 */
		slot0 = op * 2;
		slot1 = op * 3;
		rseq = rseq + 1    /* W5 (W4: ordered) */
	:: else -> break
	od
}

proctype Reader() {
	byte tries = 0, s1, a, b, t;
	bit ok = 0;
	do
	:: tries == MAXTRY -> break
	:: else ->
		tries++;
		s1 = rseq;                      /* R1 */
		if
		:: s1 % 2 == 1 -> skip
		:: else ->
			t = stamp;              /* R3 */
			a = slot0;
			b = slot1;
			if
#ifndef MUTANT_NO_RECHECK
			:: rseq == s1 -> ok = 1; break   /* R5 */
#else
			:: true -> ok = 1; break
#endif
			:: else -> skip
			fi
		fi
	od;
	if
	:: ok -> assert(a == t * 2 && b == t * 3)
	:: else -> skip
	fi
}

init {
	atomic {
		run Writer();
		run Reader()
	}
}
