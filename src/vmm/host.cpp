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
  return {
      "noxsave",
      "clearcpuid=308,151,137,147,148,129,153,317,520,521,522,156,293,304,140,157",
      "io_delay=none",
      "cryptomgr.notests",
  };
}

HostQuirks host_quirks(HostKind k) {
  if (k != HostKind::kNestedPvm) return {};
  return {.hide_cx16 = true, .hide_pv_hypercalls = true};
}

}  // namespace kiln
