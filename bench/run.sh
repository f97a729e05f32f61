#!/usr/bin/env bash
# Builds kiln and runs the benchmarks side by side with QEMU and the floor (see bench/compare.py).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$root/build" >/dev/null
exec python3 "$root/bench/compare.py" --build "$root/build" "$@"
