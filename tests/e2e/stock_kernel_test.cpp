// Debian's stock linux-image-cloud-amd64, unmodified, from both its bzImage and its ELF vmlinux.
// On nested-PVM hosts its user space cannot make system calls (see shared/guide/this-host.md), so
// the check is that the kernel boots all the way to starting init.
#include <gtest/gtest.h>

#include "support/guests.h"
#include "support/kiln_process.h"

namespace kiln::test {
namespace {

using namespace std::chrono_literals;
constexpr auto kToInit = 2700s;  // 1589 s (vmlinux) and 1718 s (bzImage) in one CI run here

class StockKernel : public ::testing::TestWithParam<const char*> {};

TEST_P(StockKernel, BootsToInit) {
  if (!have_kvm()) GTEST_SKIP() << "needs read/write access to /dev/kvm";
  const auto g = guest_files();
  const std::string kernel = std::string(GetParam()) == "bzImage" ? g.stock_bzimage : g.stock_vmlinux;
  if (auto why = missing(std::string("the stock kernel's ") + GetParam(), kernel); !why.empty()) GTEST_SKIP() << why;
  if (auto why = missing("the test initramfs", g.initramfs); !why.empty()) GTEST_SKIP() << why;
  KilnProcess k(kiln_run({"--kernel", kernel, "--initrd", g.initramfs, "--memory", "256M", "--cmdline",
                          "console=ttyS0 panic=1"}));
  ASSERT_TRUE(k.wait_for_output("Run /init as init process", kToInit)) << k.output() << k.errors();
  const std::string out = k.output();
  EXPECT_NE(out.find("Linux version 6.1"), std::string::npos);
  EXPECT_EQ(out.find("Kernel panic - not syncing: VFS"), std::string::npos);
  k.terminate();
  auto st = k.wait_exit(60s);
  ASSERT_TRUE(st);
  // 6: stopped by SIGTERM; 4: on this host init's first system call kills it first, a panic.
  EXPECT_TRUE(*st == 6 || *st == 4 || *st == 0) << *st << "\n" << k.errors();
}

INSTANTIATE_TEST_SUITE_P(BothForms, StockKernel, ::testing::Values("bzImage", "vmlinux"));

}  // namespace
}  // namespace kiln::test
