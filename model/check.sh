#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Model-checks the region protocols with spin: exhaustive safety search of
# every interleaving; fails on any assertion violation, on a search that
# was cut short, or when pan runs out of its memory limit.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() { # expect name model [spin -D flags...]
	local expect=$1 name=$2 m=$3
	shift 3
	cp "$m.pml" "$work/"
	(
		cd "$work"
		spin -a "$@" "$m.pml" >/dev/null
		gcc -O2 -DSAFETY -DCOLLAPSE -DMEMLIM=2048 -o "pan-$name" pan.c 2>/dev/null
		out=$(./"pan-$name" -m1000000 2>&1) || true
		errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' <<<"$out")
		states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' <<<"$out")
		if grep -qE "max search depth too small|out of memory|memory limit" <<<"$out"; then
			echo "$out"
			echo "model $name: search incomplete" >&2
			exit 1
		fi
		if [[ $expect == pass && "$errors" != 0 ]]; then
			echo "$out"
			spin -t -p "$m.pml" 2>/dev/null | tail -40 || true
			echo "model $name: FAILED" >&2
			exit 1
		fi
		if [[ $expect == fail && "$errors" == 0 ]]; then
			echo "model $name: the mutant was NOT caught: the model checks nothing" >&2
			exit 1
		fi
		if [[ $expect == pass ]]; then
			echo "model $name: ok, $states states, 0 errors"
		else
			echo "model $name: mutant caught (assertion violated, as it must be)"
		fi
	)
}
run pass rcuhash-key0 rcuhash -DREADKEY=0
run pass rcuhash-key3 rcuhash -DREADKEY=3
run pass rcuhash-displaced rcuhash -DREADKEY=3 -DPERM=3 -DKA=0 -DKB=1 -DPERMNODE=1
run pass atomicarr atomicarr
run fail mutant-no-node-recheck rcuhash -DREADKEY=3 -DMUTANT_NO_NODE_RECHECK
run fail mutant-no-bucket-check rcuhash -DREADKEY=3 -DPERM=3 -DKA=0 -DKB=1 -DPERMNODE=1 -DMUTANT_NO_BUCKET_CHECK
run fail mutant-no-row-recheck atomicarr -DMUTANT_NO_RECHECK
run fail mutant-setdata-no-odd rcuhash -DREADKEY=0 -DMUTANT_SETDATA_NO_ODD
