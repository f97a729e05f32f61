#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine (as root): install what kiln needs, build it,
# prepare the default guest (the test kernel and busybox initramfs) and boot it on this terminal.
# The guest shows the machine and gives a shell; `exit` in it, or Ctrl-A x, ends the VM.
# Arguments are passed to `kiln run` (e.g. --cpus 2 --memory 512M).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" >/dev/null
"$root/guest/prepare.sh"
cache=${KILN_CACHE:-/var/cache/kiln}
exec "$root/build/kiln" run --kernel "$cache/test-kernel/current/vmlinux" \
  --initrd "$cache/initramfs/current/initramfs.cpio" --cmdline "console=ttyS0 panic=1" "$@"
