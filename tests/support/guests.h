#pragma once
// Where the guest kit's scripts left the kernels and initramfs (see guest/prepare.sh).
#include <array>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>

#include <gtest/gtest.h>

namespace kiln::test {

struct GuestFiles {
  std::string test_vmlinux, test_bzimage, initramfs;
  std::string stock_bzimage, stock_vmlinux;
  std::string rootfs_tree;  // the initramfs's tree, for root disks (a directory)
};

// An ext4 image of `size` (as mkfs takes it: 64M) holding `dir`, made with mkfs.ext4 -d.
bool make_ext4_image(const std::string& image, const std::string& size, const std::string& dir);
// The output of `command` (sh -c), and its exit status in `status`.
std::string run_command(const std::string& command, int& status);
// The hex SHA-256 of a file (empty if it cannot be read).
std::string sha256_file(const std::string& path);

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

// The CPUID feature registers the tiny guest (`cpuid`) printed: leaf -> {ebx, ecx, edx}.
std::map<std::uint32_t, std::array<std::uint32_t, 3>> guest_cpuid(const std::string& out);

// A custom CPU template (Firecracker's shape) that clears LAHF/SAHF in 64-bit mode (extended leaf 1
// ECX bit 0, on every x86-64 host) and sets an MSR no KVM has.
inline constexpr const char* kClearLahfCpuConfig = R"({
  "cpuid_modifiers": [{"leaf": "0x80000001", "subleaf": "0x0", "flags": 0,
                       "modifiers": [{"register": "ecx", "bitmap": "0bxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx0"}]}],
  "msr_modifiers": [{"addr": "0xdeadbeef", "bitmap": "0b1"}]
})";
// `configured` is `host` with LAHF cleared, and nothing else of that leaf changed.
void expect_only_lahf_cleared(const std::map<std::uint32_t, std::array<std::uint32_t, 3>>& host,
                              const std::map<std::uint32_t, std::array<std::uint32_t, 3>>& configured);

}  // namespace kiln::test
