#!/usr/bin/env bash
# Fetches Debian's stock linux-image-cloud-amd64 with `apt-get download` and unpacks both forms:
# the bzImage (/boot/vmlinuz-*) and the ELF vmlinux inside it (the bzImage's payload,
# decompressed; it keeps the PVH note). Cached in $KILN_CACHE/stock-kernel/<version>/; prints the dir.
set -euo pipefail
cache=${KILN_CACHE:-/var/cache/kiln}
# The metapackage names the versioned image package it depends on.
pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -1)
if [ -z "$pkg" ]; then
  apt-get update -qq
  pkg=$(apt-cache depends linux-image-cloud-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -1)
fi
[ -n "$pkg" ] || { echo "stock-kernel.sh: cannot resolve linux-image-cloud-amd64" >&2; exit 1; }
out=$cache/stock-kernel/$pkg
if [ -f "$out/bzImage" ] && [ -f "$out/vmlinux" ]; then ln -sfn "$out" "$cache/stock-kernel/current"; echo "$out"; exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 777 "$work"  # apt-get download drops to the _apt user
(cd "$work" && apt-get download -qq "$pkg" >/dev/null)
dpkg-deb -x "$work"/"$pkg"_*.deb "$work/root"
mkdir -p "$out.tmp"
cp "$work"/root/boot/vmlinuz-* "$out.tmp/bzImage"
# payload_offset / payload_length of the setup header (0x248 / 0x24c) locate the compressed ELF
# inside the protected-mode part, which starts after (setup_sects + 1) * 512 bytes.
read -r setup_sects < <(od -An -tu1 -j $((0x1f1)) -N1 "$out.tmp/bzImage")
read -r poff plen < <(od -An -tu4 -j $((0x248)) -N8 "$out.tmp/bzImage")
start=$(( (setup_sects + 1) * 512 + poff ))
dd if="$out.tmp/bzImage" of="$work/payload" bs=1M iflag=skip_bytes,count_bytes skip=$start count=$plen status=none
magic=$(od -An -tx1 -N6 "$work/payload" | tr -d ' \n')
case "$magic" in
  fd377a585a00*) xz -dc < "$work/payload" > "$out.tmp/vmlinux" 2>/dev/null || true ;;
  28b52ffd*) zstd -dcq < "$work/payload" > "$out.tmp/vmlinux" 2>/dev/null || true ;;
  02214c18*) lz4 -dc < "$work/payload" > "$out.tmp/vmlinux" 2>/dev/null || true ;;
  5d0000*) xz --format=lzma -dc < "$work/payload" > "$out.tmp/vmlinux" 2>/dev/null || true ;;
  1f8b*) gzip -dc < "$work/payload" > "$out.tmp/vmlinux" 2>/dev/null || true ;;
  *) echo "stock-kernel.sh: unknown payload compression (magic $magic)" >&2; exit 1 ;;
esac
# The payload may carry trailing data (relocations, size word) that decompressors complain about;
# what matters is that an ELF came out.
[ "$(od -An -c -N4 "$out.tmp/vmlinux" | tr -d ' ')" = "177ELF" ] || { echo "stock-kernel.sh: no ELF in the payload" >&2; exit 1; }
rm -rf "$out"; mv "$out.tmp" "$out"
ln -sfn "$out" "$cache/stock-kernel/current"
echo "$out"
