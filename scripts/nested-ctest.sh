#!/usr/bin/env bash
# Runs the ctest tests of build dir DIR with labels LABELS (a ctest -L regex) one at a time inside
# scripts/nested-kvm.sh's VM, for hosts without /dev/kvm.
#
#   scripts/nested-ctest.sh DIR LABELS [--keep DIR]...
#
# The VM under TCG has been seen to stop making progress now and then (both its CPUs idle for
# minutes after dozens of nested guests). Each test's result is kept in DIR/nested-ctest/ as it
# ends, so when the VM prints nothing for $NESTED_STALL_SECONDS (default 240) it is killed and a
# new one goes on with the tests that have no result yet; three VMs at most. Ends with a line
# "nested-kvm: N passed, M failed" and status 0 only if every test passed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = --inner ]; then
  # In the VM: every test not yet done, each alone, its status written down as it ends.
  dir=$2 labels=$3 state=$2/nested-ctest
  cd "$dir"
  ctest -N -L "$labels" | sed -n 's/^ *Test *#\([0-9]*\): .*/\1/p' > "$state/all"
  while read -r n; do
    grep -qx "$n [0-9]*" "$state/results" 2>/dev/null && continue
    set +e
    ctest --output-on-failure -I "$n,$n" </dev/null
    rc=$?
    set -e
    echo "$n $rc" >> "$state/results"
    sync
  done < "$state/all"
  exit 0
fi
dir=$(cd "$1" && pwd) labels=$2
shift 2
state=$dir/nested-ctest
rm -rf "$state"; mkdir -p "$state"
for attempt in 1 2 3; do
  set +e
  "$root/scripts/nested-kvm.sh" --keep "$dir" "$@" --stall "${NESTED_STALL_SECONDS:-240}" -- \
    env KILN_REQUIRE_GUESTS="${KILN_REQUIRE_GUESTS:-}" bash "$root/scripts/nested-ctest.sh" --inner "$dir" "$labels"
  rc=$?
  set -e
  if [ -f "$state/all" ] && [ "$(wc -l < "$state/all")" = "$(wc -l < "$state/results" 2>/dev/null || echo -1)" ]; then break; fi
  echo "nested-ctest.sh: VM $attempt ended with status $rc before every test had a result; starting another"
done
total=$(wc -l < "$state/all" 2>/dev/null || echo 0)
passed=$(awk '$2 == 0' "$state/results" 2>/dev/null | wc -l)
failed=$(awk '$2 != 0' "$state/results" 2>/dev/null | wc -l)
missing=$((total - passed - failed))
((total > 0)) || { echo "nested-ctest.sh: no tests were listed in the VM" >&2; exit 1; }
if ((failed)); then
  echo "nested-ctest.sh: failed tests (ctest numbers): $(awk '$2 != 0 {print $1}' "$state/results" | tr '\n' ' ')"
fi
((missing == 0)) || echo "nested-ctest.sh: $missing tests got no result (the VM stalled three times)"
echo "nested-kvm: $passed passed, $((failed + missing)) failed"
((failed == 0 && missing == 0))
