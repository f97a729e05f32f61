// The test kernel (Debian linux-source-6.1 + the project's config and syscall fix) with the busybox
// initramfs: each test is one boot, with its own script chosen by kiln.script= on the cmdline.
#include <gtest/gtest.h>

#include "support/guests.h"
#include "support/kiln_process.h"

namespace kiln::test {
namespace {

using namespace std::chrono_literals;
constexpr auto kBoot = 600s;  // ~50 s to init here, ~90 s through the smoke steps

class TestKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_kvm()) GTEST_SKIP() << "needs read/write access to /dev/kvm";
    g_ = guest_files();
    for (auto [what, path] : {std::pair{"the test kernel", g_.test_vmlinux}, {"its bzImage", g_.test_bzimage},
                              {"the test initramfs", g_.initramfs}}) {
      if (auto why = missing(what, path); !why.empty()) GTEST_SKIP() << why;
    }
  }
  std::vector<std::string> args(const std::string& kernel, const std::string& script, const std::string& extra = "") {
    return kiln_run({"--kernel", kernel, "--initrd", g_.initramfs, "--memory", "128M", "--cmdline",
                     "console=ttyS0 panic=1 kiln.script=" + script + " " + extra});
  }
  static void expect_all_steps_ok(const std::string& out) {
    EXPECT_NE(out.find("KILN-SUMMARY: 0 failed"), std::string::npos) << out;
    EXPECT_EQ(out.find("FAIL"), std::string::npos) << out;
    for (const char* step : {"uname", "proc", "fork-exec", "pipes", "tmpfs-files", "signals", "rtc-date", "devport"})
      EXPECT_NE(out.find(std::string("KILN-RESULT: ") + step + " ok"), std::string::npos) << step;
  }
  GuestFiles g_;
};

TEST_F(TestKernel, PvhBootRunsUserSpaceAndAShellTypedIntoOverAPty) {
  KilnProcess k(args(g_.test_vmlinux, "smoke-shell", "kiln.status=42"), KilnProcess::Console::kPty);
  ASSERT_TRUE(k.wait_for_output("KILN-READY", kBoot)) << k.output() << k.errors();
  expect_all_steps_ok(k.output());
  // Input typed on the console reaches the guest's shell, and its answer comes back.
  k.send("echo kiln-$((6*7))-ok\r");
  EXPECT_TRUE(k.wait_for_output("kiln-42-ok", 60s)) << k.output();
  k.send("exit\r");
  auto st = k.wait_exit(60s);
  ASSERT_TRUE(st) << k.output();
  EXPECT_EQ(*st, 42) << "the status the script chose\n" << k.errors();
}

TEST_F(TestKernel, BzImageBootRunsTheSmokeScript) {
  KilnProcess k(args(g_.test_bzimage, "smoke", "kiln.status=43"));
  auto st = k.wait_exit(kBoot);
  ASSERT_TRUE(st) << k.output() << k.errors();
  EXPECT_EQ(*st, 43) << k.output() << k.errors();
  expect_all_steps_ok(k.output());
}

TEST_F(TestKernel, GuestPanicGivesThePanicStatus) {
  KilnProcess k(args(g_.test_vmlinux, "panic"));
  auto st = k.wait_exit(kBoot);
  ASSERT_TRUE(st) << k.output();
  EXPECT_EQ(*st, 4) << k.output() << k.errors();
  EXPECT_NE(k.output().find("Kernel panic - not syncing: sysrq triggered crash"), std::string::npos);
}

TEST_F(TestKernel, GuestRebootGivesTheRebootStatus) {
  KilnProcess k(args(g_.test_vmlinux, "reboot"));
  auto st = k.wait_exit(kBoot);
  ASSERT_TRUE(st) << k.output();
  EXPECT_EQ(*st, 2) << k.output() << k.errors();
  EXPECT_NE(k.output().find("KILN-RESULT: about-to-reboot ok"), std::string::npos);
}

TEST_F(TestKernel, DefaultGuestShowsTheMachineAndPowersOffFromItsShell) {
  // The main command's guest: the machine summary, then a shell; `poweroff -f` typed into it goes
  // through the kernel's own power-off path and kiln exits 0.
  KilnProcess k(args(g_.test_vmlinux, "default"), KilnProcess::Console::kPty);
  ASSERT_TRUE(k.wait_for_output("Type commands;", kBoot)) << k.output() << k.errors();
  const std::string out = k.output();
  EXPECT_NE(out.find("kiln test guest: Linux 6.1"), std::string::npos) << out;
  EXPECT_NE(out.find("1 CPU(s)"), std::string::npos) << out;
  k.send("poweroff -f\r");
  auto st = k.wait_exit(120s);
  ASSERT_TRUE(st) << k.output();
  EXPECT_EQ(*st, 0) << k.output() << k.errors();
  EXPECT_NE(k.errors().find("guest powered off"), std::string::npos) << k.errors();
}

}  // namespace
}  // namespace kiln::test
