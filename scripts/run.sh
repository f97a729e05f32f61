#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine (as root): install what kiln needs, build it,
# prepare the default guest (the test kernel and busybox initramfs) and boot it on this terminal,
# with its root file system on a virtio-blk disk ($KILN_CACHE/disks/default-root-<guest tree>.ext4,
# made on the first run and kept: what is written in the guest is there on the next run; delete it
# for a fresh one; a changed guest tree gets a new disk) and user-mode networking: the guest is
# 10.0.2.15 and reaches the host as 10.0.2.2 (`wget http://10.0.2.2:PORT/` fetches from a server on
# the host's loopback), and its web server on port 80 is forwarded to a free host port on 127.0.0.1
# ($KILN_HTTP_PORT to choose it), which the guest prints. The guest shows the machine and gives a
# shell; `exit` in it, or Ctrl-A x, ends the VM. Arguments are passed to `kiln run` (e.g. --cpus 2
# --memory 512M).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" >/dev/null
"$root/guest/prepare.sh"
cache=${KILN_CACHE:-/var/cache/kiln}
tree=$(basename "$(readlink -f "$cache/initramfs/current")")
disk=$cache/disks/default-root-$tree.ext4
if [ ! -f "$disk" ]; then
  mkdir -p "$cache/disks"
  "$root/guest/make-disk.sh" "$disk.tmp" 256M >/dev/null && mv "$disk.tmp" "$disk"
  echo "run.sh: made the guest's root disk $disk (kept between runs)"
fi
port=${KILN_HTTP_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
exec "$root/build/kiln" run --kernel "$cache/test-kernel/current/vmlinux" \
  --initrd "$cache/initramfs/current/initramfs.cpio" --disk "path=$disk,root" --rng \
  --net "user,hostfwd=tcp:127.0.0.1:$port-:80" \
  --cmdline "console=ttyS0 panic=1 kiln.http_port=$port" "$@"
