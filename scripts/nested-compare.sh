#!/usr/bin/env bash
# Boots the test kernel under kiln and under QEMU's KVM mode in turn, N times each, and counts the
# boots that did not end as the guest's script says: a way to tell a fault of kiln's from one of
# the machine it runs on. Meant for the nested-SVM VM (scripts/nested-kvm.sh), where guests were
# seen to crash at random, and for any hardware-virtualization host (QEMU's KVM mode cannot boot
# Linux on nested PVM):
#
#   scripts/nested-kvm.sh --stall 400 -- "$PWD"/scripts/nested-compare.sh [N] [OUT]   (from the repository;
#   the VM runs the command elsewhere, so the path must be absolute)
#
# Each boot: the bzImage, 2 vCPUs, 256 MiB, the initramfs's `smoke` script (user space: files,
# signals, /proc, the RTC), at most 150 s. A line per boot ("RUN kiln 3 rc=0 done=1 t=6100ms") and a
# summary; each boot's console is kept in OUT (default /var/tmp/kiln-nested-compare, on the host's
# disk when run through nested-kvm.sh). Exits 1 if a kiln boot failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${KILN_CACHE:-/var/cache/kiln}
n=${1:-20}
out=${2:-/var/tmp/kiln-nested-compare}
kernel=$cache/test-kernel/current/bzImage
initrd=$cache/initramfs/current/initramfs.cpio
kiln=${KILN:-$root/build/kiln}
line="console=ttyS0 panic=1 kiln.script=smoke"
for f in "$kernel" "$initrd" "$kiln"; do
  [ -e "$f" ] || { echo "nested-compare.sh: $f is missing (scripts/build.sh and guest/prepare.sh make it)" >&2; exit 2; }
done
command -v qemu-system-x86_64 >/dev/null || { echo "nested-compare.sh: qemu-system-x86_64 is not installed" >&2; exit 2; }
mkdir -p "$out"
declare -A failed=([kiln]=0 [qemu]=0)
for i in $(seq 1 "$n"); do
  for v in kiln qemu; do
    log=$out/$v-$i.log
    t0=$(date +%s%N)
    if [ $v = kiln ]; then
      timeout 150 "$kiln" run --kernel "$kernel" --initrd "$initrd" --memory 256M --cpus 2 --cmdline "$line" >"$log" 2>&1
    else
      # -no-reboot: a triple fault or a panic's reboot ends QEMU (status 0) instead of looping.
      timeout 150 qemu-system-x86_64 -M microvm,acpi=off -enable-kvm -cpu host -smp 2 -m 256M -kernel "$kernel" \
        -initrd "$initrd" -append "$line" -nographic -nodefaults -serial stdio -no-reboot \
        -device isa-debug-exit,iobase=0xf4,iosize=1 >"$log" 2>&1
    fi
    rc=$?
    t1=$(date +%s%N)
    # The script's last line, then status 0 (QEMU's debug-exit device turns 0 into 1).
    done_=0
    grep -q "KILN-DONE: status 0" "$log" && done_=1
    want=0; [ $v = qemu ] && want=1
    [ $done_ = 1 ] && [ $rc = "$want" ] || failed[$v]=$((failed[$v] + 1))
    echo "RUN $v $i rc=$rc done=$done_ t=$(((t1 - t0) / 1000000))ms"
  done
done
echo "nested-compare: kiln ${failed[kiln]} of $n boots failed, QEMU ${failed[qemu]} of $n (consoles in $out)"
[ "${failed[kiln]}" = 0 ]
