#!/usr/bin/env bash
# Builds the kiln test kernel from Debian's linux-source-6.1 with kiln-test.config and the
# project's nested-PVM syscall fix, once per (source, config, patch): the result is cached in
# $KILN_CACHE (default /var/cache/kiln) and this script only prints its paths on later runs.
# Output: $KILN_CACHE/test-kernel/<hash>/{vmlinux,bzImage}, and a `current` symlink.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${KILN_CACHE:-/var/cache/kiln}
tarball=/usr/src/linux-source-6.1.tar.xz
[ -f "$tarball" ] || { echo "build.sh: $tarball missing: run scripts/install-deps.sh" >&2; exit 1; }
hash=$( (sha256sum "$here/kiln-test.config" "$here/pvm-syscall-via-pf.patch" "$here/build.sh" | cut -d' ' -f1; stat -c %s "$tarball") | sha256sum | cut -c1-16)
out=$cache/test-kernel/$hash
if [ -f "$out/vmlinux" ] && [ -f "$out/bzImage" ]; then
  ln -sfn "$out" "$cache/test-kernel/current"
  echo "$out"; exit 0
fi
work=$cache/test-kernel/build-$hash
rm -rf "$work"; mkdir -p "$work"
echo "build.sh: unpacking linux-source-6.1 into $work" >&2
tar -C "$work" -xf "$tarball"
src=$work/linux-source-6.1
patch -d "$src" -p1 --quiet < "$here/pvm-syscall-via-pf.patch"
make -C "$src" -s tinyconfig >/dev/null
"$src/scripts/kconfig/merge_config.sh" -m -O "$src" "$src/.config" "$here/kiln-test.config" >/dev/null
make -C "$src" -s olddefconfig >/dev/null
# Every line of the fragment must have survived the merge (an unmet dependency drops it silently).
bad=0
while IFS= read -r line; do
  case "$line" in
    CONFIG_*=*) grep -qxF "$line" "$src/.config" || { echo "build.sh: not in final config: $line" >&2; bad=1; } ;;
    "# CONFIG_"*" is not set") opt=${line#\# }; opt=${opt%% *}; ! grep -q "^$opt=" "$src/.config" || { echo "build.sh: still set: $opt" >&2; bad=1; } ;;
  esac
done < "$here/kiln-test.config"
((bad == 0)) || exit 1
echo "build.sh: building (a few minutes)" >&2
make -C "$src" -s -j"$(nproc)" vmlinux bzImage KBUILD_BUILD_USER=kiln KBUILD_BUILD_HOST=kiln >&2
mkdir -p "$out.tmp"
cp "$src/vmlinux" "$src/arch/x86/boot/bzImage" "$src/.config" "$out.tmp/"
strip --strip-debug "$out.tmp/vmlinux" 2>/dev/null || true
rm -rf "$out"; mv "$out.tmp" "$out"
rm -rf "$work"
ln -sfn "$out" "$cache/test-kernel/current"
echo "$out"
