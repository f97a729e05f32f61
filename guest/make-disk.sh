#!/usr/bin/env bash
# Makes an ext4 disk image for a guest: make-disk.sh IMAGE SIZE [DIR]. SIZE as mkfs takes it
# (64M, 1G). From DIR, or by default the test guest's root file system (busybox, the init and its
# scripts, the same as the initramfs): such a disk boots as the root drive (`--disk path=IMAGE,root`).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: make-disk.sh IMAGE SIZE [DIR]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
cache=${KILN_CACHE:-/var/cache/kiln}
dir=${3:-}
if [ -z "$dir" ]; then
  "$here/initramfs/build.sh" >/dev/null
  dir=$cache/initramfs/current/rootfs
fi
[ -d "$dir" ] || { echo "make-disk.sh: $dir is not a directory" >&2; exit 1; }
rm -f "$1"
mkfs.ext4 -q -F -d "$dir" -L kiln-disk "$1" "$2"
echo "$1"
