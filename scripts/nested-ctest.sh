#!/usr/bin/env bash
# Runs the ctest tests of build dir DIR with labels LABELS (a ctest -L regex) one at a time inside
# scripts/nested-kvm.sh's VM, for hosts without /dev/kvm.
#
#   scripts/nested-ctest.sh DIR LABELS [--keep DIR]...
#
# The VM under TCG has been seen to stop making progress now and then, after a few dozen nested
# guests (its CPUs idle, or busy, for minutes; the cause is not known). So a VM runs at most
# $NESTED_TESTS_PER_VM tests (default 8) and the next VM goes on; each test's result is kept in
# DIR/nested-ctest/ as it ends; and a VM that prints nothing for $NESTED_STALL_SECONDS (default
# 150; the longest test takes ~25 s there) is killed and a new one goes on with the tests that
# have no result yet (six such stalls at most; one test, the PVH boot typed into over a pty,
# stalls its VM about one time in two, and passes in the next). Each test's JUnit file is kept as
# DIR/nested-ctest/junit-N.xml. Guests there also crash now and then at random (TCG's nested
# SVM; README): up to $NESTED_RERUNS (default 4) tests that failed run once more, in a fresh VM,
# and one that passes then is named in a line of its own (its first run: first-run-N.xml). Ends
# with a line "nested-kvm: N passed, M failed, K skipped"; status 0 only if no test failed and
# every test has a result.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = --inner ]; then
  # In the VM: every test not yet done, each alone, its status written down as it ends.
  dir=$2 labels=$3 state=$2/nested-ctest
  cd "$dir"
  ctest -N -L "$labels" | sed -n 's/^ *Test *#\([0-9]*\): .*/\1/p' > "$state/all"
  ran=0
  while read -r n; do
    grep -qx "$n [0-9]*" "$state/results" 2>/dev/null && continue
    ((ran++ < ${NESTED_TESTS_PER_VM:-8})) || break
    set +e
    ctest --output-on-failure -I "$n,$n" --output-junit "$state/junit-$n.xml" </dev/null
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
done_count() { if [ -f "$state/results" ]; then wc -l < "$state/results"; else echo 0; fi; }
stalls=0
# Runs, VM after VM, every test that has no result yet.
run_pending() {
  local before rc
  while true; do
    before=$(done_count)
    set +e
    "$root/scripts/nested-kvm.sh" --keep "$dir" "$@" --stall "${NESTED_STALL_SECONDS:-150}" -- \
      env KILN_REQUIRE_GUESTS="${KILN_REQUIRE_GUESTS:-}" KILN_CACHE="${KILN_CACHE:-/var/cache/kiln}" \
      NESTED_TESTS_PER_VM="${NESTED_TESTS_PER_VM:-8}" \
      bash "$root/scripts/nested-ctest.sh" --inner "$dir" "$labels"
    rc=$?
    set -e
    [ -f "$state/all" ] && [ "$(wc -l < "$state/all")" = "$(done_count)" ] && break
    if ((rc != 0 || $(done_count) == before)); then
      stalls=$((stalls + 1))
      echo "nested-ctest.sh: a VM ended with status $rc before its tests had results ($stalls of 6)"
      ((stalls < 6)) || break
    fi
  done
}
run_pending "$@"
# Guests under TCG's nested SVM crash now and then at random (README, "scripts/nested-kvm.sh"): a
# test that failed runs once more in a fresh VM, at most $NESTED_RERUNS (default 4) of them. Its
# first run's JUnit file stays as first-run-N.xml and the report names it; a test that fails twice
# fails.
touch "$state/results"
first_failed=$(awk '$2 != 0 {print $1}' "$state/results")
if [ -n "$first_failed" ] && (($(echo "$first_failed" | wc -l) <= ${NESTED_RERUNS:-4})); then
  echo "nested-ctest.sh: running once more, in a fresh VM: $(echo $first_failed)"
  for n in $first_failed; do
    [ -f "$state/junit-$n.xml" ] && mv "$state/junit-$n.xml" "$state/first-run-$n.xml"
  done
  awk '$2 == 0' "$state/results" > "$state/results.kept"
  mv "$state/results.kept" "$state/results"
  run_pending "$@"
  for n in $first_failed; do
    grep -qx "$n 0" "$state/results" && echo "$n" >> "$state/passed-on-rerun"
  done
fi
total=0
[ -f "$state/all" ] && total=$(wc -l < "$state/all")
touch "$state/results"
ran_ok=$(awk '$2 == 0' "$state/results" | wc -l)
# A test that skipped (ctest status "notrun") also exits 0: count it apart.
skipped=$(grep -l 'status="notrun"' "$state"/junit-*.xml 2>/dev/null | wc -l)
passed=$((ran_ok - skipped))
failed=$(awk '$2 != 0' "$state/results" | wc -l)
missing=$((total - ran_ok - failed))
((total > 0)) || { echo "nested-ctest.sh: no tests were listed in the VM" >&2; exit 1; }
if ((failed)); then
  echo "nested-ctest.sh: failed tests (ctest numbers): $(awk '$2 != 0 {print $1}' "$state/results" | tr '\n' ' ')"
fi
((missing == 0)) || echo "nested-ctest.sh: $missing tests got no result (the VMs stalled six times)"
if [ -s "$state/passed-on-rerun" ]; then
  echo "nested-ctest.sh: passed on their second run (the first run's output: first-run-N.xml): $(tr '\n' ' ' < "$state/passed-on-rerun")"
fi
echo "nested-kvm: $passed passed, $((failed + missing)) failed, $skipped skipped"
((failed == 0 && missing == 0))
