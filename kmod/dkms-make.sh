#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# dkms-make.sh KERNELVER KERNEL_SOURCE_DIR: the build step of dkms.conf.
#
# The kfuncs register only when kushm.ko carries module BTF (.BTF, and
# .BTF_ids resolved against it). kbuild makes both only when the kernel's
# build tree has vmlinux and tools/bpf/resolve_btfids: Debian's 6.12
# headers have them, its 6.1 headers do not, and a plain `make -C
# KERNEL_SOURCE_DIR M=...` there prints "Skipping BTF generation ... due to
# unavailability of vmlinux" and builds a module whose kfuncs cannot
# register. This step builds through kbtf.sh (the same build tree
# `make vmtest` uses) whenever the headers lack either; kbtf.sh caches it
# under /var/cache/kushm/kbtf (KUSHM_KBTF_CACHE).
set -euo pipefail

kver=${1:?usage: dkms-make.sh KERNELVER KERNEL_SOURCE_DIR}
ksrc=${2:?usage: dkms-make.sh KERNELVER KERNEL_SOURCE_DIR}
here=$(cd "$(dirname "$0")" && pwd)
kdir=$ksrc
if [[ ! -e $ksrc/vmlinux || ! -x $ksrc/tools/bpf/resolve_btfids/resolve_btfids ]]; then
	export KUSHM_KBTF_CACHE=${KUSHM_KBTF_CACHE:-/var/cache/kushm/kbtf}
	if k=$(bash "$here/kbtf.sh" kdir "$kver"); then
		kdir=$k
		echo "kushm: building against $kdir (module BTF for the kfuncs)"
	elif [[ -n ${KUSHM_DKMS_ALLOW_NO_BTF:-} ]]; then
		echo "kushm: no module BTF for $kver: building without it (KUSHM_DKMS_ALLOW_NO_BTF): the kfuncs will not register" >&2
		ksrc=/dev/null	# skip the check below
	else
		echo "kushm: no module BTF for $kver (kbtf.sh's messages above say why; it needs vmlinux from /boot/vmlinuz-$kver or apt-get download, and resolve_btfids from a linux-kbuild that has it or from linux-source); set KUSHM_DKMS_ALLOW_NO_BTF=1 to build a module without kfuncs" >&2
		exit 1
	fi
fi
make -C "$kdir" M="$here" modules
# Refuse to hand DKMS a module without BTF when the kernel has module BTF:
# it would load and silently lack its kfuncs.
if grep -q '^CONFIG_DEBUG_INFO_BTF_MODULES=y' "$ksrc/.config" 2>/dev/null &&
	! readelf -S "$here/kushm.ko" | grep -q ' \.BTF '; then
	echo "kushm: kushm.ko has no .BTF section: its kfuncs could not register" >&2
	exit 1
fi
