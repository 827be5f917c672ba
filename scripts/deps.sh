#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian packages listed in .ci/packages.txt that are missing.
# Idempotent and quick when everything is present. Needs root for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t want < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' .ci/packages.txt | tr -d ' ')
missing=()
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
# A line "a|b" is satisfied by any of its alternatives; "cmd:NAME" is one
# satisfied by a command on the PATH (npm bundled with a nodejs build, say).
# When none is, the first package alternative is installed.
for line in "${want[@]}"; do
	IFS='|' read -r -a alts <<<"$line"
	ok=0 first=
	for p in "${alts[@]}"; do
		case $p in
		cmd:*) command -v "${p#cmd:}" >/dev/null && { ok=1; break; } ;;
		*) [[ -n $first ]] || first=$p; installed "$p" && { ok=1; break; } ;;
		esac
	done
	((ok)) || missing+=("$first")
done
if ((${#missing[@]})); then
	echo "deps: installing ${missing[*]}"
	if [[ $(id -u) -ne 0 ]]; then
		echo "deps: need root to apt-get install ${missing[*]}" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
