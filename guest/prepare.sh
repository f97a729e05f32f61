#!/usr/bin/env bash
# Prepares every guest the default run, the tests and the benchmarks use, each cached by content
# under $KILN_CACHE (default /var/cache/kiln) with a `current` link:
#   test-kernel/current/{vmlinux,bzImage}   the test kernel (built from linux-source-6.1, ~4 min once)
#   initramfs/current/initramfs.cpio        the busybox test initramfs
#   stock-kernel/current/{bzImage,vmlinux}  Debian's linux-image-cloud-amd64 (with --stock)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/test-kernel/build.sh" >/dev/null
"$here/initramfs/build.sh" >/dev/null
if [ "${1:-}" = "--stock" ]; then "$here/stock-kernel.sh" >/dev/null; fi
echo "guest kit ready in ${KILN_CACHE:-/var/cache/kiln}"
