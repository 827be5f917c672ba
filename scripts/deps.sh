#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian packages listed in .ci/packages.txt that are missing.
# Idempotent and quick when everything is present. Needs root for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t want < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' .ci/packages.txt | tr -d ' ')
missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
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
