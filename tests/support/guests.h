#pragma once
// Where the guest kit's scripts left the kernels and initramfs (see guest/prepare.sh).
#include <optional>
#include <string>

namespace kiln::test {

struct GuestFiles {
  std::string test_vmlinux, test_bzimage, initramfs;
  std::string stock_bzimage, stock_vmlinux;
};

// The paths under $KILN_CACHE (default /var/cache/kiln); a field is empty if its file is missing.
GuestFiles guest_files();
// True on a nested-PVM host (kvm_pvm loaded).
bool nested_pvm_host();
bool have_kvm();
// The reason to skip a test that needs `path`, or an empty string if it is there. When
// KILN_REQUIRE_GUESTS=1 (the README's test command sets it) a missing guest is a failure, not a skip.
std::string missing(const std::string& what, const std::string& path);

}  // namespace kiln::test
