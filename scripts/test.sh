#!/usr/bin/env bash
# Every test, from a fresh Debian 12 machine (as root): install what kiln needs, build it (and an
# ASan+UBSan build), prepare all guests (test kernel, initramfs, Debian's stock kernel), then run
# the unit, integration and end-to-end tests with ctest, and the unit and integration layers
# again under the sanitizers.
#
# The integration and end-to-end layers need /dev/kvm. On a host without it they run inside a
# QEMU (TCG) virtual machine whose emulated CPU has SVM, with Debian's kernel and kvm_amd
# (scripts/nested-kvm.sh); only if that cannot start either are they skipped, and this says so.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/guest/prepare.sh" --stock &
prep=$!
"$root/scripts/build.sh" "$root/build"
wait $prep
export KILN_REQUIRE_GUESTS=1

where=host
if ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
  if "$root/scripts/nested-kvm.sh" --check; then
    where=nested
    echo "test.sh: no /dev/kvm here; the layers that need it run inside a QEMU VM with nested KVM (scripts/nested-kvm.sh)"
  else
    where=none
    echo "test.sh: WARNING: no /dev/kvm here and no nested-KVM VM could start: the integration and e2e tests will SKIP"
  fi
fi
keep=(--keep "$root")
[ -n "${KILN_CACHE:-}" ] && keep+=(--keep "$KILN_CACHE")

# ctest in build dir $1 for labels $2 (unit first); in the VM for the layers that need KVM.
run_ctest() {
  local dir=$1 labels=$2
  if [ "$where" = nested ]; then
    (cd "$dir" && ctest --output-on-failure -j2 -L unit)
    # One test at a time: each boots a VM inside a VM that has only the host's two cores.
    "$root/scripts/nested-ctest.sh" "$dir" "${labels#unit|}" "${keep[@]}"
  else
    (cd "$dir" && ctest --output-on-failure -j2 -L "$labels")
  fi
}

run_ctest "$root/build" 'unit|integration|e2e'
"$root/scripts/build.sh" "$root/build-asan" -DKILN_SANITIZE=ON
run_ctest "$root/build-asan" 'unit|integration'
