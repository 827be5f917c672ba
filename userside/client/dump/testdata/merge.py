#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# An independent reader of docs/region-format.md section 4.1, written from
# the text alone: merges the u64 value columns of one rcuhash entry's
# slots by each column's merge byte. TestMergeFromTheDoc feeds it what
# dump.Merge gets and compares the results.
#
# stdin:  entries, each: "nslots vsize", then "col OFFSET SIZE TYPE KIND
#         MERGE" lines, then one "slot HEX" line per slot (vsize bytes),
#         then "end".
# stdout: per entry, one "OFFSET VALUE" or "OFFSET -" line per column.
import sys

M64 = (1 << 64) - 1
KEY, LABEL, VALID = 3, 4, 5


def sat(a, b):
    return min(a + b, M64)


def cross(d, na, nb, n):
    if d == 0 or na == 0 or nb == 0 or n < 2:
        return 0
    if d * d > M64 or (na * nb) >> 64 >= n:
        return M64
    p = na * nb
    q, r = p // n, p % n
    x = d * d
    if x * q > M64:
        return M64
    return sat(x * q, (x * r) // n)


def main():
    entry = []
    for ln in sys.stdin.read().split("\n"):
        if ln.strip() == "end":
            merge(entry)
            entry = []
        elif ln.strip():
            entry.append(ln)


def merge(lines):
    nslots, vsize = map(int, lines[0].split())
    cols, slots = [], []
    for ln in lines[1:]:
        f = ln.split()
        if not f:
            continue
        if f[0] == "col":
            cols.append(tuple(int(x) for x in f[1:]))
        elif f[0] == "slot":
            slots.append(bytes.fromhex(f[1]))
    u64 = lambda j, off: int.from_bytes(slots[j][off:off + 8], "little")
    # The group's count, sum and m2 columns.
    role = {}
    for off, size, typ, kind, merge in cols:
        if kind in (KEY, LABEL, VALID) or typ != 1 or size != 8 or off + 8 > vsize:
            continue
        r, g = merge & 15, merge >> 4
        if 6 <= r <= 9:
            role[(g, r)] = off

    def empty(g, j):
        c = role.get((g, 6))
        return c is not None and u64(j, c) == 0

    for off, size, typ, kind, merge in cols:
        r, g = merge & 15, merge >> 4
        if kind in (KEY, LABEL, VALID) or typ != 1 or size != 8 or off + 8 > vsize:
            print(off, "-")
            continue
        if r == 0:
            r = 2 if kind == 1 else 1
        live = [j for j in range(nslots) if not empty(g, j)]
        vals = [u64(j, off) for j in live]
        if r == 1:
            print(off, u64(0, off) if nslots == 1 else "-")
        elif r in (2, 6, 7):
            v = 0
            for x in vals:
                v = sat(v, x)
            print(off, v)
        elif r == 3:
            print(off, min(vals) if vals else 0)
        elif r == 4:
            print(off, max(vals) if vals else 0)
        elif r == 5:
            print(off, vals[-1] if vals else 0)
        elif r in (8, 9):
            if (g, 6) not in role or (g, 7) not in role or (r == 9 and (g, 9) not in role):
                print(off, "-")
                continue
            n = s = m2 = 0
            first = True
            for j in live:
                nb, sb = u64(j, role[(g, 6)]), u64(j, role[(g, 7)])
                m2b = u64(j, role[(g, 9)]) if (g, 9) in role else 0
                if first:
                    n, s, m2, first = nb, sb, m2b, False
                    continue
                d = abs(s // n - sb // nb)
                nn = sat(n, nb)
                m2 = sat(sat(m2, m2b), cross(d, n, nb, nn))
                n, s = nn, sat(s, sb)
            print(off, m2 if r == 9 else (s // n if n else 0))
        else:
            print(off, "-")


main()
