#!/usr/bin/env bash
# Builds kiln and runs the benchmarks side by side with QEMU and the floor (see bench/compare.py
# and bench/block.py). Arguments go to compare.py.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$root/build" >/dev/null
python3 "$root/bench/compare.py" --build "$root/build" "$@"
# The block device's figures (kiln on both transports, QEMU, fio on the host).
python3 "$root/bench/block.py" --build "$root/build"
# vsock (kiln only where the host has no /dev/vhost-vsock for QEMU).
python3 "$root/bench/vsock.py" --build "$root/build"
if [ "$(id -u)" = 0 ]; then
  python3 "$root/bench/net.py" --build "$root/build"
else
  echo "bench/run.sh: bench/net.py needs root (a network namespace and a tap); skipped"
fi
