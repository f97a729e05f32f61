#pragma once
// What kind of KVM host this is, and what that means for the guest.
#include <string>
#include <vector>

namespace kiln {

enum class HostKind {
  kHardware,   // ordinary VMX/SVM KVM
  kNestedPvm,  // kvm_pvm: guest kernel code is emulated; some instructions fail; vmcall never returns
};

// `sysfs_module_dir` is /sys/module normally; tests pass their own.
HostKind detect_host(const std::string& sysfs_module_dir = "/sys/module");
const char* host_name(HostKind k);

// On nested PVM: glibc in the guest must not use AVX or AVX-512 (see host_kernel_args).
inline constexpr const char* kGlibcNoAvxTunables =
    "GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX,-AVX2,-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD,-FMA,-F16C,"
    "-AVX_VNNI,-XSAVE,-XSAVEC";

// Kernel arguments a Linux guest needs on this host (empty on ordinary hosts).
std::vector<std::string> host_kernel_args(HostKind k);

struct HostQuirks {
  bool hide_cx16 = false;
  bool hide_pv_hypercalls = false;
};
HostQuirks host_quirks(HostKind k);

}  // namespace kiln
