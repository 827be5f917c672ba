#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# scripts/vm/setup.sh [SERIES...]: prepares what the qemu kernel tests need,
# for each kernel series (6.1, 6.12, 6.12-rt; default all three):
#   - host tools: qemu-system-x86, busybox-static, cpio (apt-get, root);
#   - the kernel headers of the current Debian bookworm ABI of the series,
#     resolved from the metapackage with apt-cache (never hard-coded), and
#     the compiler its kbuild expects (apt-get, root);
#   - the kernel image, fetched with `apt-get download` and unpacked into
#     the cache directory, never installed into the host's /boot.
# It then writes $CACHE/SERIES.env (KVER, VMLINUZ, KDIR, CC) for the
# harness (tools/vmtest). Idempotent: a second run with everything in
# place makes no network access and takes well under a second.
#
# The cache is ${KUSHM_VM_CACHE:-${XDG_CACHE_HOME:-~/.cache}/kushm/vm};
# delete it at will, the next run fetches again.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${KUSHM_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kushm/vm}
series=("$@")
((${#series[@]})) || series=(6.1 6.12 6.12-rt)
mkdir -p "$CACHE/debs"

log() { echo "vm-setup: $*" >&2; }
die() { echo "vm-setup: $*" >&2; exit 1; }

updated=0
apt_update() {
	((updated)) && return 0
	[[ $(id -u) -eq 0 ]] || return 0
	log "apt-get update"
	apt-get update -qq >/dev/null
	updated=1
}

need_install=()
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
apt_install() {
	(($#)) || return 0
	[[ $(id -u) -eq 0 ]] || die "need root to apt-get install $*"
	apt_update
	log "apt-get install $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

for p in qemu-system-x86 busybox-static cpio; do
	installed "$p" || need_install+=("$p")
done
apt_install "${need_install[@]}"

# meta SERIES KIND: the metapackage of a series (kind image or headers).
meta() {
	case $1 in
	6.1) echo "linux-$2-cloud-amd64" ;;
	6.12) echo "linux-$2-6.12-cloud-amd64" ;;
	# PREEMPT_RT build of the same 6.12 series (Debian's generic rt
	# flavour: serial console, initramfs and debugfs are built in).
	6.12-rt) echo "linux-$2-6.12-rt-amd64" ;;
	*) die "unknown kernel series $1 (want 6.1, 6.12 or 6.12-rt)" ;;
	esac
}

# resolve SERIES: prints the kernel ABI version (e.g. 6.1.0-56-cloud-amd64)
# that the series' image metapackage depends on.
resolve() {
	local m dep
	m=$(meta "$1" image)
	dep=$(apt-cache depends "$m" 2>/dev/null | sed -n 's/^ *Depends: linux-image-\(.*\)$/\1/p' | head -n1 || true)
	if [[ -z $dep ]]; then
		apt_update
		dep=$(apt-cache depends "$m" 2>/dev/null | sed -n 's/^ *Depends: linux-image-\(.*\)$/\1/p' | head -n1 || true)
	fi
	echo "$dep"
}

for s in "${series[@]}"; do
	env="$CACHE/$s.env"
	kver=$(resolve "$s")
	if [[ -z $kver ]]; then
		# Offline with a warm cache: keep what we had.
		[[ -f $env ]] || die "cannot resolve the kernel of series $s from $(meta "$s" image) (apt-get update?)"
		log "$s: apt-cache has no answer, using the cached $(. "$env"; echo "$KVER")"
		continue
	fi
	kdir=/usr/src/linux-headers-$kver
	vmlinuz=$CACHE/$kver/boot/vmlinuz-$kver
	if [[ ! -f $kdir/Makefile ]]; then
		apt_install "linux-headers-$kver"
	fi
	# The compiler this kbuild was configured with (CONFIG_CC_VERSION_TEXT).
	ccver=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="[^ ]* (Debian \([0-9]*\)\..*/\1/p' "$kdir/.config" 2>/dev/null | head -n1)
	cc=gcc
	if [[ -n $ccver ]]; then
		cc=gcc-$ccver
		command -v "$cc" >/dev/null || apt_install "$cc"
	fi
	if [[ ! -f $vmlinuz ]]; then
		(
			cd "$CACHE/debs"
			deb=$(ls linux-image-"$kver"_*.deb 2>/dev/null | head -n1 || true)
			if [[ -z $deb ]]; then
				log "apt-get download linux-image-$kver"
				apt-get download "linux-image-$kver" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true
				deb=$(ls linux-image-"$kver"_*.deb | head -n1)
			fi
			rm -rf "$CACHE/$kver.tmp"
			dpkg-deb -x "$deb" "$CACHE/$kver.tmp"
			rm -rf "$CACHE/$kver"
			mv "$CACHE/$kver.tmp" "$CACHE/$kver"
		)
		[[ -f $vmlinuz ]] || die "no $vmlinuz in linux-image-$kver"
	fi
	# Module BTF (needed for the kfuncs): scripts/kbtf/kbtf.sh provides a
	# build tree with vmlinux and resolve_btfids where Debian's headers
	# lack them (6.1). KUSHM_VM_NO_BTF=1 builds against the plain headers.
	if [[ -x $ROOT/scripts/kbtf/kbtf.sh && -z ${KUSHM_VM_NO_BTF:-} ]]; then
		if k=$("$ROOT/scripts/kbtf/kbtf.sh" kdir "$kver"); then
			kdir=$k
		else
			log "$s: kbtf.sh failed: building without module BTF (no kfuncs)"
		fi
	fi
	tmp=$(mktemp "$env.XXXXXX")
	cat >"$tmp" <<EOT
# written by scripts/vm/setup.sh
SERIES=$s
KVER=$kver
VMLINUZ=$vmlinuz
KDIR=$kdir
CC=$cc
EOT
	mv "$tmp" "$env"
	log "$s: $kver ready (headers $kdir, image $vmlinuz, $cc)"
done
