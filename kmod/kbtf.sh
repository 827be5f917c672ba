#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# kbtf.sh: a kernel-module build tree that produces module BTF, so that the
# module's BPF kfuncs can be registered (register_btf_kfunc_id_set needs
# module BTF; without it the kernel only logs "missing module BTF, cannot
# register kfuncs" and the kfuncs silently do not exist).
#
# Debian's linux-headers lack two things kbuild needs for module BTF:
#   * vmlinux (pahole --btf_base vmlinux, resolve_btfids -b vmlinux);
#     6.12's headers ship one, 6.1's do not;
#   * tools/bpf/resolve_btfids; 6.12's linux-kbuild ships it, 6.1's does not.
# For a release that lacks them this script makes a private copy of the
# headers tree under the cache dir, adds vmlinux (extracted from the
# linux-image package's vmlinuz) and resolve_btfids (from an installed newer
# linux-kbuild, or built from linux-source-<series>), and prints its path.
#
# Usage:
#   kbtf.sh release SERIES   print the cloud-amd64 release of SERIES (6.1, 6.12)
#                            as apt resolves it now (no ABI number hard-coded)
#   kbtf.sh kdir RELEASE|SERIES
#                            print a KDIR for `make -C KDIR M=...` that builds
#                            modules with BTF; sets it up on first use (cached)
#   kbtf.sh check RELEASE|SERIES
#                            build scripts/kbtf/testmod (one kfunc) with that KDIR
#                            and verify the .ko has .BTF naming the kfunc and a
#                            resolved .BTF_ids set
#
# It lives in kmod/ because DKMS builds through it (kmod/dkms-make.sh; the
# DKMS source tree is kmod/); scripts/kbtf/kbtf.sh is a link to it.
#
# Idempotent; everything it makes lives in $KUSHM_KBTF_CACHE
# (default ~/.cache/kushm/kbtf; /var/cache/kushm/kbtf under DKMS) and can
# be deleted at any time. Needs (Debian):
# linux-headers-<release>, pahole (dwarves), libelf-dev, zlib1g-dev, lz4, xz-utils,
# gcc, make, bc; apt-get download for the image (and linux-source if no
# resolve_btfids is installed).
set -euo pipefail
shopt -s inherit_errexit

CACHE=${KUSHM_KBTF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kushm/kbtf}
HERE=$(cd "$(dirname "$0")" && pwd)

log() { echo "kbtf: $*" >&2; }
die() { log "$*"; exit 1; }

# release SERIES -> e.g. 6.1.0-56-cloud-amd64
release_of() {
	local series=$1 meta
	case $series in
	[0-9]*.[0-9]*.[0-9]*-*) echo "$series"; return ;; # a release (uname -r)
	6.1) meta=linux-headers-cloud-amd64 ;;
	*) meta=linux-headers-${series}-cloud-amd64 ;;
	esac
	local dep
	dep=$(apt-cache depends "$meta" 2>/dev/null | sed -n 's/^ *Depends: linux-headers-\(.*-cloud-amd64\)$/\1/p' | head -1)
	[[ -n $dep ]] || die "cannot resolve $meta with apt-cache (apt-get update?)"
	case $dep in
	"$series".*) ;;
	*) die "$meta resolves to $dep, not series $series" ;;
	esac
	echo "$dep"
}

# extract_vmlinux VMLINUZ OUT: find the compressed payload and decompress it
# (same method as the kernel's scripts/extract-vmlinux).
extract_vmlinux() {
	local in=$1 out=$2 tmp
	tmp=$(mktemp)
	# PCRE magic|decompressor
	local -a tries=(
		'\x02\x21\x4c\x18|lz4 -dc'
		'\x1f\x8b\x08|gunzip -c'
		'\xfd\x37\x7a\x58\x5a\x00|unxz -c'
		'\x28\xb5\x2f\xfd|unzstd -c'
		'BZh|bunzip2 -c'
	)
	local t magic cmd pos
	for t in "${tries[@]}"; do
		magic=${t%%|*} cmd=${t#*|}
		command -v "${cmd%% *}" >/dev/null || continue
		for pos in $(LC_ALL=C grep -obUaP "$magic" "$in" | cut -d: -f1 | head -20); do
			tail -c +$((pos + 1)) "$in" | $cmd >"$tmp" 2>/dev/null || true
			if [[ $(head -c4 "$tmp" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]]; then
				mv "$tmp" "$out"
				return 0
			fi
		done
	done
	rm -f "$tmp"
	return 1
}

fetch_deb() { # fetch_deb PACKAGE DIR: apt-get download into DIR (cached)
	local pkg=$1 dir=$2
	mkdir -p "$dir"
	if ! ls "$dir"/"${pkg}"_*.deb >/dev/null 2>&1; then
		log "downloading $pkg"
		(cd "$dir" && apt-get download -q "$pkg" >&2) || die "apt-get download $pkg failed"
	fi
	ls "$dir"/"${pkg}"_*.deb | head -1
}

get_vmlinux() { # get_vmlinux RELEASE OUT
	local rel=$1 out=$2 vmlinuz
	vmlinuz=/boot/vmlinuz-$rel
	# scripts/vm/setup.sh unpacks the same image for the qemu tests.
	local vm=${KUSHM_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kushm/vm}/$rel/boot/vmlinuz-$rel
	[[ -r $vmlinuz ]] || vmlinuz=$vm
	if [[ ! -r $vmlinuz ]]; then
		local deb x
		deb=$(fetch_deb "linux-image-$rel" "$CACHE/debs")
		x=$CACHE/image-$rel
		if [[ ! -r $x/boot/vmlinuz-$rel ]]; then
			rm -rf "$x"; mkdir -p "$x"
			dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$x" ./boot
		fi
		vmlinuz=$x/boot/vmlinuz-$rel
	fi
	log "extracting vmlinux from $vmlinuz"
	extract_vmlinux "$vmlinuz" "$out.tmp" || die "no vmlinux found in $vmlinuz"
	readelf -S "$out.tmp" | grep -q ' \.BTF ' || die "vmlinux of $rel has no .BTF section"
	rm -rf "$CACHE/image-$rel" "$CACHE/debs/linux-image-${rel}"_*.deb
	# Keep only what pahole/resolve_btfids need: smaller cache.
	objcopy --only-section=.BTF --only-section=.BTF_ids --only-section=.symtab \
		--only-section=.strtab --only-section=.shstrtab "$out.tmp" "$out" 2>/dev/null || mv "$out.tmp" "$out"
	rm -f "$out.tmp"
}

get_resolve_btfids() { # get_resolve_btfids SERIES OUT
	local series=$1 out=$2 cand
	# A newer linux-kbuild's resolve_btfids handles the same .BTF_ids format
	# (BTF_ID, BTF_SET, BTF_SET8) as 6.1's: the 6.1 test module built with
	# 6.12's binary is byte-identical to one built with 6.1's own.
	# KBTF_FROM_SOURCE=1 forces the build from linux-source.
	for cand in /usr/lib/linux-kbuild-*/tools/bpf/resolve_btfids/resolve_btfids; do
		[[ -z ${KBTF_FROM_SOURCE:-} ]] || break
		if [[ -x $cand ]]; then
			log "using $cand"
			cp "$cand" "$out"
			return
		fi
	done
	# Build it from linux-source-SERIES (the 6.1 way measured in issue 6).
	local deb src=$CACHE/src-$series
	deb=$(fetch_deb "linux-source-$series" "$CACHE/debs")
	if [[ ! -d $src/tools/bpf/resolve_btfids ]]; then
		rm -rf "$src"; mkdir -p "$src"
		local tarxz
		dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$src" --wildcards './usr/src/linux-source-*.tar.xz'
		tarxz=$(ls "$src"/usr/src/linux-source-*.tar.xz)
		tar -xJf "$tarxz" -C "$src" --strip-components=1 --wildcards \
			'*/tools' '*/scripts' '*/include' '*/Makefile'
		rm -rf "$src/usr"
	fi
	log "building resolve_btfids from linux-source-$series"
	make -s -C "$src/tools/bpf/resolve_btfids" -j"$(nproc)" >&2
	cp "$src/tools/bpf/resolve_btfids/resolve_btfids" "$out"
	rm -rf "$src" "$deb" # 600 MB of sources: only the binary is kept
}

kdir_of() { # kdir_of RELEASE -> prints KDIR
	local rel=$1 hdr=/usr/src/linux-headers-$1
	[[ -d $hdr ]] || die "$hdr missing: apt-get install linux-headers-$rel"
	local series
	series=$(echo "$rel" | sed -E 's/^([0-9]+\.[0-9]+).*/\1/')
	if [[ -e $hdr/vmlinux && -x $hdr/tools/bpf/resolve_btfids/resolve_btfids ]]; then
		echo "$hdr"; return
	fi
	local kd=$CACHE/build-$rel
	if [[ -f $kd/.kbtf-ok ]]; then echo "$kd"; return; fi
	log "setting up $kd"
	rm -rf "$kd"; mkdir -p "$kd"
	cp -a "$hdr"/. "$kd"/
	# Relative symlinks into /usr/lib/linux-kbuild-* break in a copy.
	local s t
	for s in scripts tools; do
		t=$(readlink -f "$hdr/$s")
		rm -f "$kd/$s"
		if [[ $s == scripts ]]; then ln -s "$t" "$kd/scripts"; fi
	done
	mkdir -p "$kd/tools/bpf/resolve_btfids"
	t=$(readlink -f "$hdr/tools")
	for s in "$t"/*; do [[ $(basename "$s") == bpf ]] || ln -s "$s" "$kd/tools/"; done
	if [[ -x $t/bpf/resolve_btfids/resolve_btfids ]]; then
		ln -s "$t/bpf/resolve_btfids/resolve_btfids" "$kd/tools/bpf/resolve_btfids/resolve_btfids"
	else
		get_resolve_btfids "$series" "$kd/tools/bpf/resolve_btfids/resolve_btfids"
	fi
	if [[ -e $hdr/vmlinux ]]; then ln -s "$hdr/vmlinux" "$kd/vmlinux"; else get_vmlinux "$rel" "$kd/vmlinux"; fi
	touch "$kd/.kbtf-ok"
	echo "$kd"
}

check() { # check RELEASE: build the one-kfunc test module and verify its BTF
	local rel=$1 kd out
	kd=$(kdir_of "$rel")
	out=$CACHE/testmod-$rel
	rm -rf "$out"; mkdir -p "$out"
	cp "$HERE"/testmod/* "$out"/
	make -s -C "$kd" M="$out" modules >"$out/build.log" 2>&1 || { cat "$out/build.log" >&2; die "testmod build failed for $rel"; }
	grep -i 'skipping btf' "$out/build.log" >&2 && die "kbuild skipped BTF for $rel"
	local ko=$out/kbtf_testmod.ko
	readelf -S "$ko" | grep -q ' \.BTF ' || die "$rel: $ko has no .BTF section"
	readelf -S "$ko" | grep -q ' \.BTF_ids ' || die "$rel: $ko has no .BTF_ids section"
	if command -v bpftool >/dev/null; then
		bpftool -B "$kd/vmlinux" btf dump file "$ko" | grep -q "FUNC 'kbtf_testmod_kfunc'" ||
			die "$rel: kfunc kbtf_testmod_kfunc not in the module BTF"
	fi
	# The set8 in .BTF_ids must hold a resolved (non-zero) BTF id.
	local ids
	ids=$(objcopy -O binary --only-section=.BTF_ids "$ko" /dev/stdout | od -An -tu4 -v | tr -s ' \n' ' ')
	read -r -a w <<<"$ids"
	# layout: set8 {u32 cnt; u32 flags; {u32 id; u32 flags}[cnt]}
	[[ ${#w[@]} -ge 4 && ${w[0]} -ge 1 && ${w[2]} -ne 0 ]] || die "$rel: unresolved .BTF_ids: $ids"
	if command -v bpftool >/dev/null; then
		bpftool -B "$kd/vmlinux" btf dump file "$ko" | grep -q "^\[${w[2]}\] FUNC 'kbtf_testmod_kfunc'" ||
			die "$rel: .BTF_ids id ${w[2]} is not kbtf_testmod_kfunc"
	fi
	log "$rel: OK (.BTF present, kfunc btf id ${w[2]})"
}

cmd=${1:-}; arg=${2:-}
case $cmd in
release) release_of "$arg" ;;
kdir) kdir_of "$(release_of "$arg")" ;;
check) check "$(release_of "$arg")" ;;
*) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
