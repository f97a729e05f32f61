#!/usr/bin/env bash
# Installs everything kiln's build, guests, tests and benchmarks need on Debian 12 (run as root).
# Idempotent: packages already present are skipped by apt-get itself.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
packages=(
  build-essential cmake ninja-build pkg-config git
  libcli11-dev nlohmann-json3-dev libboost1.81-dev curl libspdlog-dev libfmt-dev libzydis-dev libzycore-dev liburing-dev libslirp-dev fio
  zlib1g-dev liblzma-dev liblz4-dev libzstd-dev libbz2-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
  # guest kit: test kernel build, initramfs, disk images
  linux-source-6.1 flex bison bc libelf-dev libssl-dev cpio xz-utils zstd lz4 busybox-static e2fsprogs
  # tests and benchmarks
  qemu-system-x86 python3 util-linux acpica-tools
  # scripts/nested-kvm.sh, on hosts without /dev/kvm: modprobe/depmod for the kernel's modules
  kmod
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: all packages present"
