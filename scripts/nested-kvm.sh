#!/usr/bin/env bash
# For hosts without /dev/kvm: runs a command where there is one, inside a QEMU virtual machine
# under TCG whose emulated AMD CPU has SVM, running Debian's generic kernel with kvm_amd loaded.
# The host's / is that VM's root (9p, read-write), /tmp is a tmpfs there (Unix sockets cannot live
# on 9p) with the folders named by --keep bound back in, and the command runs as root in a chroot.
#
#   scripts/nested-kvm.sh [--keep DIR]... [--cpus N] [--memory MiB] [--timeout SECONDS]
#                         [--stall SECONDS] -- COMMAND...
#   scripts/nested-kvm.sh --check     exits 0 if a VM with /dev/kvm can be started here
#
# The command's output comes to stdout; the script exits with the command's status (125 if the VM
# did not get as far as running it, 124 if it ran out of time, 126 if it printed nothing for the
# --stall time and was killed). The kernel and the initramfs are
# built once into $KILN_CACHE/nested-kvm/<kernel package>/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${KILN_CACHE:-/var/cache/kiln}
keep=() cpus=2 memory=6144 timeout=3600 stall=0 check=0
while (($#)); do
  case "$1" in
    --keep) keep+=("$(cd "$2" && pwd)"); shift 2 ;;
    --cpus) cpus=$2; shift 2 ;;
    --memory) memory=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --stall) stall=$2; shift 2 ;;
    --check) check=1; shift ;;
    --) shift; break ;;
    *) echo "nested-kvm.sh: unknown argument '$1' (see the comment at the top)" >&2; exit 2 ;;
  esac
done
((check)) || (($#)) || { echo "nested-kvm.sh: no command given after --" >&2; exit 2; }

# --- the kernel and the initramfs -------------------------------------------------------------
meta=linux-image-amd64
pkg=$(apt-cache depends $meta 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
if [ -z "$pkg" ]; then
  apt-get update -qq
  pkg=$(apt-cache depends $meta | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
fi
[ -n "$pkg" ] || { echo "nested-kvm.sh: cannot resolve $meta" >&2; exit 125; }
scratch=()
trap 'rm -rf "${scratch[@]}"' EXIT
kit=$cache/nested-kvm/$pkg
if ! [ -f "$kit/vmlinuz" ] || ! [ -f "$kit/initramfs.cpio" ]; then
  modprobe=$(command -v modprobe || echo /sbin/modprobe)  # kmod, from install-deps.sh
  depmod=$(command -v depmod || echo /sbin/depmod)
  work=$(mktemp -d); scratch+=("$work")
  chmod 777 "$work"  # apt-get download drops to the _apt user
  (cd "$work" && apt-get download -qq "$pkg" >/dev/null)
  dpkg-deb -x "$work"/"$pkg"_*.deb "$work/root"
  kver=$(ls "$work/root/lib/modules")
  "$depmod" -b "$work/root" "$kver"
  ir=$work/ir
  mkdir -p "$ir"/{bin,mods,proc,sys,dev,host,keep}
  cp "$(command -v busybox)" "$ir/bin/busybox"
  i=0
  # kvm_amd and the 9p root over virtio-pci, each module after what it needs.
  for m in kvm_amd 9p 9pnet_virtio virtio_pci; do "$modprobe" -d "$work/root" -S "$kver" --show-depends $m; done |
    awk '$1 == "insmod" && !seen[$2]++ {print $2}' | while read -r ko; do
      i=$((i + 1))
      cp "$ko" "$ir/mods/$(printf %02d $i)-$(basename "$ko")"
    done
  mkdir -p "$kit.tmp"
  cp "$work"/root/boot/vmlinuz-* "$kit.tmp/vmlinuz"
  (cd "$ir" && find . | cpio -o -H newc --quiet) > "$kit.tmp/initramfs.cpio"
  rm -rf "$kit"; mv "$kit.tmp" "$kit"
fi
# The init script may change without the kernel, so it is not in the cached image: each run
# appends it (a cpio archive may be followed by another; the kernel unpacks both).
initrd=$(mktemp); job=$(mktemp -d); scratch+=("$initrd" "$job")
{
  cat "$kit/initramfs.cpio"
  d=$(mktemp -d); cp "$root/scripts/nested-kvm-init.sh" "$d/init"; chmod +x "$d/init"
  (cd "$d" && echo init | cpio -o -H newc --quiet); rm -rf "$d"
} > "$initrd"

# --- the run ----------------------------------------------------------------------------------
if ((check)); then
  printf '%s\n' 'test -c /dev/kvm' > "$job/cmd"
else
  printf '%q ' "$@" > "$job/cmd"; echo >> "$job/cmd"
fi
printf '%s\n' "$job" "${keep[@]}" > "$job/keep"
# No XSAVE in the VM's CPU. TCG's SVM does not appear to intercept a nested guest's XSETBV (its
# XSETBV helper checks no intercept): kvm_amd never learns the XCR0 the guest set, so the guest's
# CPUID reports an XSAVE size for x87 state alone ("XSAVE consistency problem" at boot) and its
# XCR0 is put back at every world switch. Without XSAVE the guests use FXSAVE. (Random guest
# crashes under TCG's nested SVM remain: triple faults, a corrupted GS base; a rerun passes.)
last=$SECONDS  # the last sign of progress, read by the loop below
set +e
timeout --foreground -k 10 "$timeout" qemu-system-x86_64 -accel tcg,thread=multi -cpu max,-xsave -smp "$cpus" -m "$memory" \
  -kernel "$kit/vmlinuz" -initrd "$initrd" -display none -monitor none -serial stdio -no-reboot \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 kiln.nest=$job" \
  -virtfs local,path=/,mount_tag=host,security_model=passthrough,id=host,multidevs=remap </dev/null |
  while true; do
    # Each line of the VM's console as it comes; none for --stall seconds ends the VM. The VM's
    # own lockup reports (a soft lockup, an RCU stall) are not progress: a VM whose CPUs are stuck
    # prints one every 28 s.
    if ((stall)); then
      left=$((stall - (SECONDS - last)))
      if ((left > 0)); then IFS= read -r -t "$left" line; else false; fi
    else
      IFS= read -r line
    fi
    r=$?
    if ((r > 128 || (stall && r != 0 && SECONDS - last >= stall))); then
      echo "nested-kvm.sh: the VM printed nothing but lockup reports for ${stall} s; killing it" >&2
      pkill -f "kiln.nest=$job" || true
      touch "$job/stalled"
      cat >/dev/null
      break
    fi
    ((r == 0)) || { [ -n "$line" ] && ((!check)) && printf '%s' "$line"; break; }
    case "$line" in
      *"soft lockup - CPU#"* | *"rcu_preempt detected stalls"* | *"rcu_sched detected stalls"* | *"rcu: INFO: "*) ;;
      *) last=$SECONDS ;;
    esac
    ((check)) || printf '%s\n' "$line"
  done
status=("${PIPESTATUS[@]}")
set -e
[ -f "$job/stalled" ] && exit 126
[ "${status[0]}" = 124 ] && { echo "nested-kvm.sh: the VM ran out of its ${timeout} s" >&2; exit 124; }
[ -f "$job/rc" ] || { echo "nested-kvm.sh: the VM ended before the command did (QEMU status ${status[0]})" >&2; exit 125; }
exit "$(cat "$job/rc")"
