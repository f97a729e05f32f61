#include "support/guests.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include <gtest/gtest.h>

namespace kiln::test {

namespace {
std::string if_exists(const std::string& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) ? p : std::string();
}
std::string dir_if_exists(const std::string& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode) ? p : std::string();
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
      dir_if_exists(cache + "/initramfs/current/rootfs"),
  };
}

std::string run_command(const std::string& command, int& status) {
  std::string out;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) {
    status = -1;
    return out;
  }
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int st = ::pclose(p);
  status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

bool make_ext4_image(const std::string& image, const std::string& size, const std::string& dir) {
  int st = 0;
  run_command("mkfs.ext4 -q -F -d '" + dir + "' '" + image + "' " + size, st);
  return st == 0;
}

std::string sha256_file(const std::string& path) {
  int st = 0;
  const std::string out = run_command("sha256sum '" + path + "'", st);
  return st == 0 ? out.substr(0, 64) : std::string();
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

std::map<std::uint32_t, std::array<std::uint32_t, 3>> guest_cpuid(const std::string& out) {
  std::map<std::uint32_t, std::array<std::uint32_t, 3>> m;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    unsigned leaf = 0, b = 0, c = 0, d = 0;
    if (std::sscanf(line.c_str(), "tiny: cpuid %x ebx=%x ecx=%x edx=%x", &leaf, &b, &c, &d) == 4) m[leaf] = {b, c, d};
  }
  return m;
}

void expect_only_lahf_cleared(const std::map<std::uint32_t, std::array<std::uint32_t, 3>>& host,
                              const std::map<std::uint32_t, std::array<std::uint32_t, 3>>& configured) {
  ASSERT_EQ(host.count(0x80000001), 1u);
  ASSERT_EQ(configured.count(0x80000001), 1u);
  const auto& h = host.at(0x80000001);
  const auto& c = configured.at(0x80000001);
  ASSERT_EQ(h[1] & 1u, 1u) << "the host template offers LAHF/SAHF";
  EXPECT_EQ(c[1], h[1] & ~1u) << "LAHF/SAHF cleared, the rest of ECX kept";
  EXPECT_EQ(c[2], h[2]) << "EDX kept";
}

}  // namespace kiln::test
