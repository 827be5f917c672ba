#!/bin/sh
# SPDX-License-Identifier: MIT
# make bench-lttng: the filter benchmark (../shared/bench/filter-bench.md,
# version 2) as a tracing hot path, LTTng-UST against kushm, in one run:
#   - LTTng-UST: a C tracepoint with the 64 fields, the N-predicate chain as
#     `lttng enable-event --filter`, in a snapshot (flight-recorder) session
#     of our own lttng-sessiond (no disk writes);
#   - kushm: a user tracepoint (bpfrt.Tracepoint) recording into a region's
#     trace ring, with the same chain as a BPF filter on the interpreter and
#     on the JIT, and with no filter (BenchmarkTracepointFilter).
# Prints ns/event for N = 1, 10, 50, TRUE- and FALSE-biased.
#
#   scripts/bench-lttng.sh [--build-only DIR] [ITERS [ROUNDS]]
#
# Both sides run ROUNDS times (default 3), alternating, so that a shared
# machine's load falls on both; the summary gives each median and the
# ratio LTTng-UST / kushm JIT per N and bias, measured in the same run.
#
# Needs gcc, liblttng-ust-dev and lttng-tools (.ci/packages.txt); not part
# of `make check` (it starts a daemon). Run as root or as a user allowed to
# start lttng-sessiond.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build_only=
out=
if [ "${1:-}" = "--build-only" ]; then
	build_only=1
	out=$2
	shift 2
fi
iters=${1:-2000000}
rounds=${2:-3}
[ -n "$out" ] || out=$(mktemp -d /tmp/kushm-bench-lttng.XXXXXX)
mkdir -p "$out"

# Build the LTTng-UST side.
gcc -O2 -I"$here/bench-lttng" -o "$out/lttng_bench" "$here/bench-lttng/bench.c" -llttng-ust -ldl
[ -z "$build_only" ] || { echo "built $out/lttng_bench"; exit 0; }

# filter N BIAS: the chain as an LTTng filter expression (pass = all hold).
filter() {
	n=$1 bias=$2 i=0 expr=
	while [ "$i" -lt "$n" ]; do
		if [ "$i" -eq 0 ] && [ "$bias" = false ]; then
			p="f0 <= 0"
		else
			p="f$i >= $i"
		fi
		expr="${expr:+$expr && }$p"
		i=$((i + 1))
	done
	echo "$expr"
}

# Our own session daemon, stopped on exit by its pid.
export LTTNG_HOME="$out/home"
mkdir -p "$LTTNG_HOME"
lttng-sessiond >"$out/sessiond.log" 2>&1 &
sessiond=$!
trap 'kill "$sessiond" 2>/dev/null; wait "$sessiond" 2>/dev/null || true' EXIT INT TERM
i=0
until lttng list >/dev/null 2>&1; do
	i=$((i + 1))
	[ "$i" -lt 100 ] || { echo "lttng-sessiond did not start:" >&2; cat "$out/sessiond.log" >&2; exit 1; }
	sleep 0.1
done

lttng_run() { # name [filter]
	s="kbench$$"
	lttng create "$s" --snapshot >/dev/null
	if [ -n "${2:-}" ]; then
		lttng enable-event -u -s "$s" kushm_bench:ev --filter "$2" >/dev/null
	else
		lttng enable-event -u -s "$s" kushm_bench:ev >/dev/null
	fi
	lttng start "$s" >/dev/null
	ns=$(LTTNG_UST_REGISTER_TIMEOUT=5000 "$out/lttng_bench" "$iters")
	lttng destroy "$s" >/dev/null
	echo "$1 $ns"
}

version=$(lttng --version | sed -n 's/.* \([0-9][0-9]*\.[0-9][0-9.]*\).*/\1/p')
results="$out/results"
: >"$results"
r=0
while [ "$r" -lt "$rounds" ]; do
	r=$((r + 1))
	lttng_run "lttng/nofilter" >>"$results"
	for n in 1 10 50; do
		for bias in true false; do
			lttng_run "lttng/N=$n/$bias" "$(filter "$n" "$bias")" >>"$results"
		done
	done
	(cd "$root" && ${GO:-go} test -run '^$' -bench 'BenchmarkTracepointFilter' -benchtime="${iters}x" ./userside/bpfrt) |
		awk '/^BenchmarkTracepointFilter\// { sub(/^BenchmarkTracepointFilter\//, "kushm/", $1); sub(/-[0-9]+$/, "", $1); print $1, $3 }' >>"$results"
done

echo "# LTTng-UST $version (C tracepoint, 64 u64 fields, snapshot session) against kushm's"
echo "# user tracepoint (region trace ring, 512-byte records); $iters events, median of $rounds rounds"
awk '
{ v[$1] = v[$1] " " $2; n[$1]++ }
END {
	for (k in v) {
		c = split(substr(v[k], 2), a, " ")
		for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		med[k] = a[int((c + 1) / 2)]
	}
	printf "%-10s %-6s %12s %12s %12s %12s %10s\n", "N", "bias", "lttng", "kushm-interp", "kushm-jit", "kushm-none", "lttng/jit"
	split("1 10 50", ns, " ")
	split("true false", bs, " ")
	for (i = 1; i <= 3; i++) for (j = 1; j <= 2; j++) {
		t = "N=" ns[i] "/" bs[j]
		l = med["lttng/" t]; ji = med["kushm/jit/" t]
		printf "%-10s %-6s %12s %12s %12s %12s %9.1fx\n", ns[i], bs[j], l, med["kushm/interp/" t], (ji == "" ? "-" : ji), med["kushm/nofilter"], (ji == "" ? 0 : l / ji)
	}
	printf "no filter: lttng %s ns/event, kushm %s ns/event\n", med["lttng/nofilter"], med["kushm/nofilter"]
}' "$results"
