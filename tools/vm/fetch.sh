#!/usr/bin/env bash
# Fetches and caches what the test VM needs (reference: docs/toolchain.md, "A second kernel"):
#   QEMU (TCG) and a static busybox from apt; Debian's stock kernel package, unpacked (never installed: that would
#   drag in systemd, udev and initramfs-tools); modules.dep made with busybox depmod; a small busybox initramfs
#   that mounts the host's / read-only over virtio-9p. Idempotent: with a complete cache it prints one line and exits.
# Usage: tools/vm/fetch.sh [CACHE_DIR]   (default: $KMESH_VM_CACHE or <repo>/.cache/vm)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${1:-${KMESH_VM_CACHE:-$here/../../.cache/vm}}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
export DEBIAN_FRONTEND=noninteractive

ready() {
  [ -f "$cache/current" ] || return 1
  local v; v=$(cat "$cache/current")
  [ -f "$cache/linux-$v/boot/vmlinuz-$v" ] && [ -f "$cache/linux-$v/lib/modules/$v/modules.dep" ] && [ -f "$cache/initramfs-$v.cpio.gz" ] &&
    cmp -s "$here/guest/init" "$cache/initramfs-$v.init"   # rebuilt when guest/init changes
}

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ -x /bin/busybox ] || need+=(busybox-static)
if ((${#need[@]})); then
  echo "vm: apt-get install ${need[*]}"
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
fi

if ready; then echo "vm: cache ready ($(cat "$cache/current"), $cache)"; exit 0; fi

if [ -f "$cache/current" ] && [ -f "$cache/linux-$(cat "$cache/current")/lib/modules/$(cat "$cache/current")/modules.dep" ]; then
  pkg=linux-image-$(cat "$cache/current")   # keep the kernel we have; only the initramfs is stale
else
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
fi
if [ -z "$pkg" ]; then apt-get update -qq; pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}'); fi
[ -n "$pkg" ] || { echo "vm: cannot find the package behind linux-image-amd64" >&2; exit 1; }
ver=${pkg#linux-image-}
root=$cache/linux-$ver
if [ ! -f "$root/lib/modules/$ver/modules.dep" ]; then
  echo "vm: fetching $pkg (about 70 MB, unpacked about 410 MB)"
  tmp=$(mktemp -d "$cache/.dl-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get download "$pkg" >/dev/null 2>&1)
  rm -rf "$root.partial" && mkdir -p "$root.partial"
  dpkg-deb -x "$tmp"/"$pkg"_*.deb "$root.partial"
  busybox depmod -b "$root.partial" "$ver"
  rm -rf "$root" && mv "$root.partial" "$root"
fi

echo "vm: building the initramfs for $ver"
ird=$(mktemp -d "$cache/.initramfs-XXXXXX")
trap 'rm -rf "$ird" ${tmp:+"$tmp"}' EXIT
mkdir -p "$ird"/{bin,dev,proc,sys,mods,host,rw,newroot}
cp /bin/busybox "$ird/bin/busybox"
# The modules the initramfs needs before the host's / is reachable, in dependency order (modules.dep lists a
# module's dependencies after it; load them depth first).
moddir=$root/lib/modules/$ver
declare -A seen=()
order=()
add() {
  local m=$1 line dep
  [ -n "${seen[$m]:-}" ] && return 0
  seen[$m]=1
  line=$(grep -m1 "^kernel/.*/$m\.ko:" "$moddir/modules.dep") || { echo "vm: module $m not in modules.dep" >&2; exit 1; }
  for dep in ${line#*:}; do add "$(basename "$dep" .ko)"; done
  cp "$moddir/${line%%:*}" "$ird/mods/"
  order+=("$m.ko")
}
for m in virtio_pci 9pnet_virtio 9p overlay; do add "$m"; done
printf '%s\n' "${order[@]}" > "$ird/mods/order"
cp "$here/guest/init" "$ird/init"
chmod +x "$ird/init" "$ird/bin/busybox"
(cd "$ird" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 > "$cache/initramfs-$ver.cpio.gz.partial")
mv "$cache/initramfs-$ver.cpio.gz.partial" "$cache/initramfs-$ver.cpio.gz"
cp "$here/guest/init" "$cache/initramfs-$ver.init"
echo "$ver" > "$cache/current"
echo "vm: cache ready ($ver, $cache)"
