#!/usr/bin/env bash
# Every test, from a fresh Debian 12 machine (as root): install what kiln needs, build it (and an
# ASan+UBSan build), prepare all guests (test kernel, initramfs, Debian's stock kernel), then run
# the unit, integration and end-to-end tests with ctest, the unit and integration layers again
# under the sanitizers, and every libFuzzer target for a minute (fuzz/run.sh).
#
# The integration and end-to-end layers need /dev/kvm. On a host without it they run inside a
# QEMU (TCG) virtual machine whose emulated CPU has SVM, with Debian's kernel and kvm_amd
# (scripts/nested-kvm.sh). If neither is possible this fails: a run that could not test kiln on
# KVM is not a pass. Every phase goes on after a failure; the report at the end says what ran
# where, which tests were skipped and why, and closes with "test.sh: N passed, N failed, N skipped".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
started=$(date +%s)
"$root/scripts/install-deps.sh"
"$root/guest/prepare.sh" --stock &
prep=$!
"$root/scripts/build.sh" "$root/build"
wait $prep
export KILN_REQUIRE_GUESTS=1

if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
  where=host
  module=kvm
  for m in kvm_pvm kvm_intel kvm_amd; do
    if [ -d /sys/module/$m ]; then module=$m; break; fi
  done
  kvm_where="this machine, $module"
elif "$root/scripts/nested-kvm.sh" --check; then
  where=nested
  kvm_where="QEMU VM with nested SVM, kvm_amd"
  echo "test.sh: no /dev/kvm here; the layers that need it run inside a QEMU VM with nested KVM (scripts/nested-kvm.sh)"
else
  echo "test.sh: FAILED: no /dev/kvm here and the nested-KVM VM (scripts/nested-kvm.sh --check) cannot start: the integration and e2e layers cannot run" >&2
  exit 1
fi
keep=(--keep "$root")
[ -n "${KILN_CACHE:-}" ] && keep+=(--keep "$KILN_CACHE")

results=$root/build/test-results
rm -rf "$results"; mkdir -p "$results"
report=()
status=0

# phase NAME BUILD_DIR LABEL: ctest for one label, on this machine or (for the layers that need
# KVM, on a host without it) in the nested VM; its JUnit results are added to the report.
phase() {
  local name=$1 dir=$2 label=$3 must="!" on=$kvm_where
  [ "$label" = unit ] && must="" && on="this machine"
  echo "test.sh: $name: ctest -L $label ($(( ($(date +%s) - started) / 60 )) min in)"
  if [ "$label" = unit ] || [ "$where" = host ]; then
    # A failing test shows in the report; every phase runs.
    (cd "$dir" && ctest --output-on-failure -j2 -L "^$label\$" --output-junit "$results/$name.xml") || true
    report+=("$name$must=$on=$results/$name.xml")
  else
    # One test at a time: each boots a VM inside a VM that has only the host's two cores.
    "$root/scripts/nested-ctest.sh" "$dir" "^$label\$" "${keep[@]}" || status=1
    mkdir -p "$results/$name"
    cp "$dir"/nested-ctest/junit-*.xml "$results/$name/" 2>/dev/null || true
    report+=("$name$must=$on=$(ls "$results/$name"/*.xml 2>/dev/null | tr '\n' ',' || true)")
  fi
}

phase unit "$root/build" unit
phase integration "$root/build" integration
phase e2e "$root/build" e2e
"$root/scripts/build.sh" "$root/build-asan" -DKILN_SANITIZE=ON
phase asan-unit "$root/build-asan" unit
phase asan-integration "$root/build-asan" integration
echo "test.sh: fuzzing ($(( ($(date +%s) - started) / 60 )) min in)"
"$root/fuzz/run.sh" 60 --junit "$results/fuzz.xml" || true
report+=("fuzz!=this machine, libFuzzer 60 s a target=$results/fuzz.xml")

echo
echo "test.sh: report, after $(( ($(date +%s) - started) / 60 )) min"
python3 "$root/scripts/test-report.py" "${report[@]}" || status=1
exit $status
