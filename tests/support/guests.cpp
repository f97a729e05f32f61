#include "support/guests.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include <gtest/gtest.h>

namespace kiln::test {

namespace {
std::string if_exists(const std::string& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) ? p : std::string();
}
}  // namespace

GuestFiles guest_files() {
  const char* env = std::getenv("KILN_CACHE");
  const std::string cache = env != nullptr && *env != '\0' ? env : "/var/cache/kiln";
  return {
      if_exists(cache + "/test-kernel/current/vmlinux"),
      if_exists(cache + "/test-kernel/current/bzImage"),
      if_exists(cache + "/initramfs/current/initramfs.cpio"),
      if_exists(cache + "/stock-kernel/current/bzImage"),
      if_exists(cache + "/stock-kernel/current/vmlinux"),
  };
}

bool nested_pvm_host() {
  struct stat st{};
  return ::stat("/sys/module/kvm_pvm", &st) == 0;
}

bool amd_svm_host() {
  struct stat st{};
  return ::stat("/sys/module/kvm_amd", &st) == 0;
}

bool have_kvm() { return ::access("/dev/kvm", R_OK | W_OK) == 0; }

std::string missing(const std::string& what, const std::string& path) {
  if (!path.empty()) return {};
  return what + " is missing: build the guest kit with guest/prepare.sh";
}

bool guests_required() {
  const char* req = std::getenv("KILN_REQUIRE_GUESTS");
  return req != nullptr && std::string(req) == "1";
}

}  // namespace kiln::test
