#!/usr/bin/env bash
# Every test, from a fresh Debian 12 machine (as root): install what kiln needs, build it (and an
# ASan+UBSan build), prepare all guests (test kernel, initramfs, Debian's stock kernel), then run
# the unit, integration and end-to-end tests with ctest, and the unit and integration layers
# again under the sanitizers.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/guest/prepare.sh" --stock &
prep=$!
"$root/scripts/build.sh" "$root/build"
wait $prep
export KILN_REQUIRE_GUESTS=1
cd "$root/build"
ctest --output-on-failure -j2
"$root/scripts/build.sh" "$root/build-asan" -DKILN_SANITIZE=ON
cd "$root/build-asan"
ctest --output-on-failure -j2 -L 'unit|integration'
