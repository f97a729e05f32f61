#pragma once
// Where the guest kit's scripts left the kernels and initramfs (see guest/prepare.sh).
#include <initializer_list>
#include <optional>
#include <string>

#include <gtest/gtest.h>

namespace kiln::test {

struct GuestFiles {
  std::string test_vmlinux, test_bzimage, initramfs;
  std::string stock_bzimage, stock_vmlinux;
};

// The paths under $KILN_CACHE (default /var/cache/kiln); a field is empty if its file is missing.
GuestFiles guest_files();
// True on a nested-PVM host (kvm_pvm loaded).
bool nested_pvm_host();
// /dev/kvm is served by kvm_amd: KVM resets a vCPU when its guest shuts down (triple faults).
bool amd_svm_host();
bool have_kvm();
// Why a test that needs `path` cannot run, or an empty string if it is there.
std::string missing(const std::string& what, const std::string& path);
// KILN_REQUIRE_GUESTS=1 (the README's test command sets it): a missing guest is a failure.
bool guests_required();

// Skips the test when `path` (the file `what`) is missing; when guests are required, fails it with
// a fatal failure instead, so that neither SetUp's caller nor the test body goes on without it.
#define KILN_NEED_GUEST(what, path)                                            \
  do {                                                                         \
    if (auto kiln_why_ = ::kiln::test::missing(what, path); !kiln_why_.empty()) { \
      if (::kiln::test::guests_required()) GTEST_FAIL() << kiln_why_;          \
      else GTEST_SKIP() << kiln_why_;                                          \
    }                                                                          \
  } while (0)

// What a Linux kernel's log says once its CPUs are up: "smp: Brought up 1 node, N CPU(s)" (the
// serial console ends lines with CR LF, so one CPU is matched to the end of its line).
inline std::string smp_brought_up_line(int cpus) {
  return cpus == 1 ? "smp: Brought up 1 node, 1 CPU\r\n"
                   : "smp: Brought up 1 node, " + std::to_string(cpus) + " CPUs";
}

// Log lines a kernel prints when it finds fault with the firmware tables kiln wrote.
inline constexpr std::initializer_list<const char*> kFirmwareComplaints = {
    "ACPI Error", "ACPI BIOS Error", "ACPI Warning", "Firmware Bug", "not listed by BIOS"};  // FW_BUG prints "[Firmware Bug]"

}  // namespace kiln::test
