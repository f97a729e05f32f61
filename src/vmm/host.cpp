#include "vmm/host.h"

#include <sys/stat.h>

namespace kiln {

HostKind detect_host(const std::string& dir) {
  struct stat st{};
  if (::stat((dir + "/kvm_pvm").c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return HostKind::kNestedPvm;
  return HostKind::kHardware;
}

const char* host_name(HostKind k) {
  return k == HostKind::kNestedPvm ? "nested PVM (kvm_pvm)" : "hardware virtualization";
}

std::vector<std::string> host_kernel_args(HostKind k) {
  if (k != HostKind::kNestedPvm) return {};
  // On PVM the host's emulator runs guest kernel code and gives up on XSAVE state, several SIMD
  // extensions and SMAP's stac/clac: hide them so the kernel does not use them, and skip the
  // crypto self-tests and I/O delays that take minutes under emulation.
  //
  // With noxsave the kernel switches only the x87/SSE state between tasks (FXSAVE), but guest user
  // space runs natively and sees the host's CPUID and XCR0 (AVX and AVX-512 enabled), so glibc
  // picks its AVX2/EVEX string functions and one task's YMM/ZMM upper halves leak into another's
  // (seen: busybox segfaulting in its first instructions, a static test's YMM registers wrong in
  // 1 of 2 time slices). The kernel passes GLIBC_TUNABLES on to init's environment; with it every
  // glibc program (Debian's user space included) keeps to SSE. Code that uses AVX on its own
  // is not covered, and kiln cannot cover it here: PVM does not switch XCR0 for the guest, and a
  // kernel that saved AVX state would have to believe it has AVX, and use it where the host's
  // emulator gives up.
  //
  // ERMS and FSRM (297, 580) are hidden for speed: with them the kernel clears and copies memory
  // with rep stosb/movsb, which the emulator runs a byte per iteration; without them it uses rep
  // stosq/movsq, eight bytes per iteration (8 MiB written to a tmpfs file from /dev/zero: 27.5 s
  // with them, 10.2 s without).
  //
  // noreplace-smp: a kernel that finds one possible CPU rewrites every lock prefix in its text at
  // boot, each patch emulated (the test kernel's SMP alternatives: 2.5 s with it, 0.7 s without).
  // The prefixes stay; a locked instruction costs the emulator no more than a plain one.
  //
  // initcall_blacklist=ftrace_check_for_weak_functions: kernels with this initcall (Debian's 6.1
  // among them) check every ftrace record at boot with a kallsyms lookup (37 697 there), to hide the
  // __fentry__ sites of overridden weak functions, which the linker leaves behind as dead code.
  // Here that check alone was 82 M emulated instructions, 18 % of a stock boot to power-off (Run
  // /init at 338 s instead of 411 s). Without it those dead sites stay in ftrace's list, under the
  // name of the function before them: tracing them patches code that never runs. Kernels without
  // the initcall ignore the name; a kernel with kallsyms then looks up each initcall's name once.
  return {
      "noreplace-smp",
      "initcall_blacklist=ftrace_check_for_weak_functions",
      "noxsave",
      "clearcpuid=308,151,137,147,148,129,153,317,520,521,522,156,293,304,140,157,297,580",
      "io_delay=none",
      "cryptomgr.notests",
      kGlibcNoAvxTunables,
  };
}

HostQuirks host_quirks(HostKind k) {
  if (k != HostKind::kNestedPvm) return {};
  return {.hide_cx16 = true, .hide_pv_hypercalls = true};
}

}  // namespace kiln
