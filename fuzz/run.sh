#!/usr/bin/env bash
# Fuzzes every target with libFuzzer (clang 16, ASan+UBSan) for SECONDS each (default 60), two at a
# time, starting from its committed corpus. New inputs go to build-fuzz/corpus/<target>/, never into
# the tree (merge the useful ones into fuzz/corpus/ by hand). A crash, a leak, a hang (10 s on one
# input) or a sanitizer report fails the run; its input is written to build-fuzz/<target>-artifacts/.
#
#   fuzz/run.sh [SECONDS] [--junit FILE]     (FILE: a JUnit report, one test case a target)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
junit=""
[ "${2:-}" = --junit ] && junit=$3
export DEBIAN_FRONTEND=noninteractive
for p in clang-16 libclang-rt-16-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends clang-16 libclang-rt-16-dev >/dev/null; break; }
done
out=$root/build-fuzz
cmake -S "$root" -B "$out" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang-16 \
  -DCMAKE_CXX_COMPILER=clang++-16 -DKILN_LIBFUZZER=ON -DKILN_WERROR=OFF >/dev/null
targets=$(sed -n 's/^kiln_fuzz_target(\([a-z_]*\).*/\1/p' "$root/fuzz/CMakeLists.txt")
ninja -C "$out" $targets >/dev/null
fuzz_one() {
  local t=$1 seconds=$2 out=$3 root=$4
  mkdir -p "$out/corpus/$t" "$out/$t-artifacts"
  if (cd "$out" && "./fuzz/$t" -max_total_time="$seconds" -max_len=65536 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$out/$t-artifacts/" "corpus/$t" "$root/fuzz/corpus/$t" > "$out/$t.log" 2>&1); then
    echo "fuzz/run.sh: $t: $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$out/$t.log" | grep -o '[0-9]*$') runs in $seconds s, no finding"
  else
    echo "fuzz/run.sh: $t FAILED (its log: $out/$t.log; the input: $out/$t-artifacts/)"
    tail -40 "$out/$t.log"
    return 1
  fi
}
export -f fuzz_one
failed=0
rm -f "$out"/*.ok
printf '%s\n' $targets | xargs -P 2 -I{} bash -c 'fuzz_one "$@" && touch "$3/$1.ok"' _ {} "$seconds" "$out" "$root" || failed=1
if [ -n "$junit" ]; then
  {
    echo '<?xml version="1.0" encoding="UTF-8"?>'
    echo "<testsuite name=\"fuzz\" tests=\"$(echo $targets | wc -w)\">"
    for t in $targets; do
      if [ -f "$out/$t.ok" ]; then echo "  <testcase name=\"fuzz.$t\" status=\"run\"/>"
      else echo "  <testcase name=\"fuzz.$t\" status=\"fail\"><failure message=\"see $out/$t.log\"/></testcase>"; fi
    done
    echo "</testsuite>"
  } > "$junit"
fi
if ((failed)); then
  echo "fuzz/run.sh: a fuzz target found a problem" >&2
  exit 1
fi
echo "fuzz/run.sh: $(echo $targets | wc -w) targets fuzzed for $seconds s each, no finding"
