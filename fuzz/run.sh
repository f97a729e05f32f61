#!/usr/bin/env bash
# Fuzzes every target with libFuzzer (clang 16, ASan+UBSan) for SECONDS each (default 60), starting
# from its committed corpus; new inputs go to build-fuzz/corpus/<target>/ (merge the useful ones
# into fuzz/corpus/ by hand). Crashes are written to build-fuzz/ and the script fails.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
export DEBIAN_FRONTEND=noninteractive
for p in clang-16 libclang-rt-16-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends clang-16 libclang-rt-16-dev >/dev/null; break; }
done
out=$root/build-fuzz
cmake -S "$root" -B "$out" -G Ninja -DCMAKE_C_COMPILER=clang-16 -DCMAKE_CXX_COMPILER=clang++-16 \
  -DKILN_LIBFUZZER=ON -DKILN_WERROR=OFF >/dev/null
targets=$(sed -n 's/^kiln_fuzz_target(\([a-z_]*\).*/\1/p' "$root/fuzz/CMakeLists.txt")
ninja -C "$out" $targets >/dev/null
for t in $targets; do
  mkdir -p "$out/corpus/$t"
  echo "fuzz/run.sh: $t for $seconds s"
  (cd "$out" && "./fuzz/$t" -max_total_time="$seconds" -max_len=65536 "corpus/$t" "$root/fuzz/corpus/$t" 2>&1 | tail -3)
done
