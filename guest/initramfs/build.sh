#!/usr/bin/env bash
# Builds the kiln test initramfs (an uncompressed cpio: unpacking is slow under emulation, and
# gzip slower still) from Debian's busybox-static and the scripts beside this file. Cached by
# content in $KILN_CACHE/initramfs/<hash>/initramfs.cpio; prints the path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${KILN_CACHE:-/var/cache/kiln}
busybox=/bin/busybox
[ -x "$busybox" ] && "$busybox" --list >/dev/null 2>&1 || { echo "initramfs/build.sh: busybox-static missing: run scripts/install-deps.sh" >&2; exit 1; }
hash=$( (cd "$here" && sha256sum init build.sh udhcpc.script scripts/*.sh ../vsock/kiln-vsock.c; sha256sum "$busybox") | sha256sum | cut -c1-16)
out=$cache/initramfs/$hash
if [ -f "$out/initramfs.cpio" ]; then ln -sfn "$out" "$cache/initramfs/current"; echo "$out/initramfs.cpio"; exit 0; fi
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,tmp,scripts}
cp "$busybox" "$stage/bin/busybox"
# Only the applets the scripts use: each link is work for the guest kernel when it unpacks.
for a in sh ash cat cp cut date dd echo grep head kill ls mkdir mount poweroff printf reboot rm sed seq \
         setsid cttyhack sleep test uname usleep nproc free uptime wc tr sync umount stty id ps dmesg \
         switch_root sha256sum fstrim blockdev touch ip nc wget httpd udhcpc timeout; do
  ln -s busybox "$stage/bin/$a"
done
# The vsock helper (busybox has none): freestanding, a few KiB.
gcc -static -nostdlib -ffreestanding -fno-stack-protector -fno-pie -no-pie -Os -s -o "$stage/bin/kiln-vsock" \
    "$here/../vsock/kiln-vsock.c"
mknod -m 600 "$stage/dev/console" c 5 1
mknod -m 666 "$stage/dev/null" c 1 3
install -m 755 "$here/init" "$stage/init"
install -m 755 "$here/udhcpc.script" "$stage/bin/udhcpc.script"
install -m 644 "$here"/scripts/*.sh "$stage/scripts/"
mkdir -p "$out.tmp"
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 --reproducible) > "$out.tmp/initramfs.cpio"
# The same tree is the root file system of the guest's disks (guest/make-disk.sh makes them).
cp -a "$stage" "$out.tmp/rootfs"
rm -rf "$out"; mv "$out.tmp" "$out"
ln -sfn "$out" "$cache/initramfs/current"
echo "$out/initramfs.cpio"
