#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine (as root): install what kiln needs, build it,
# prepare the default guest (the test kernel and busybox initramfs) and boot it on this terminal,
# with its root file system on a virtio-blk disk ($KILN_CACHE/disks/default-root.ext4, made on the
# first run and kept: what is written in the guest is there on the next run; delete it for a fresh
# one). The guest shows the machine and gives a shell; `exit` in it, or Ctrl-A x, ends the VM.
# Arguments are passed to `kiln run` (e.g. --cpus 2 --memory 512M).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" >/dev/null
"$root/guest/prepare.sh"
cache=${KILN_CACHE:-/var/cache/kiln}
disk=$cache/disks/default-root.ext4
if [ ! -f "$disk" ]; then
  mkdir -p "$cache/disks"
  "$root/guest/make-disk.sh" "$disk.tmp" 256M >/dev/null && mv "$disk.tmp" "$disk"
  echo "run.sh: made the guest's root disk $disk (kept between runs)"
fi
exec "$root/build/kiln" run --kernel "$cache/test-kernel/current/vmlinux" \
  --initrd "$cache/initramfs/current/initramfs.cpio" --disk "path=$disk,root" --rng \
  --cmdline "console=ttyS0 panic=1" "$@"
