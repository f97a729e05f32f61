#include "vmm/host.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "boot/cmdline.h"

namespace kiln {
namespace {

TEST(Host, DetectsNestedPvmFromItsModule) {
  char dir[] = "/tmp/kiln-sysfs-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  EXPECT_EQ(detect_host(dir), HostKind::kHardware);
  const std::string mod = std::string(dir) + "/kvm_pvm";
  ASSERT_EQ(::mkdir(mod.c_str(), 0755), 0);
  EXPECT_EQ(detect_host(dir), HostKind::kNestedPvm);
  ::rmdir(mod.c_str());
  ::rmdir(dir);
}

TEST(Host, ArgumentsAndQuirksOnlyOnNestedPvm) {
  EXPECT_TRUE(host_kernel_args(HostKind::kHardware).empty());
  EXPECT_FALSE(host_quirks(HostKind::kHardware).hide_cx16);
  const auto args = host_kernel_args(HostKind::kNestedPvm);
  EXPECT_NE(std::find(args.begin(), args.end(), "noxsave"), args.end());
  EXPECT_NE(std::find(args.begin(), args.end(), "cryptomgr.notests"), args.end());
  // A one-CPU kernel rewriting each lock prefix in its text is emulated patch by patch here.
  EXPECT_NE(std::find(args.begin(), args.end(), "noreplace-smp"), args.end());
  // The per-CPU first chunk from pages, not a 2 MiB unit zeroed a byte per emulated iteration.
  EXPECT_NE(std::find(args.begin(), args.end(), "percpu_alloc=page"), args.end());
  // Debian's 6.1 kernel's ftrace check (a kallsyms lookup per ftrace record), its trace events'
  // enum rewrite and its BLAKE2s and KDF self-tests, each emulated instruction by instruction.
  EXPECT_NE(std::find(args.begin(), args.end(),
                      "initcall_blacklist=ftrace_check_for_weak_functions,trace_eval_init,blake2s_mod_init,"
                      "crypto_kdf108_init"),
            args.end());
  // No SRSO return thunk: the CPU never runs guest kernel code here, the emulator does.
  EXPECT_NE(std::find(args.begin(), args.end(), "spec_rstack_overflow=off"), args.end());
  // Guest user space keeps to SSE: the kernel (noxsave) does not switch AVX state between tasks.
  EXPECT_NE(std::find(args.begin(), args.end(), std::string(kGlibcNoAvxTunables)), args.end());
  EXPECT_NE(std::string(kGlibcNoAvxTunables).find("-AVX2,"), std::string::npos);
  EXPECT_TRUE(host_quirks(HostKind::kNestedPvm).hide_cx16);
  EXPECT_TRUE(host_quirks(HostKind::kNestedPvm).hide_pv_hypercalls);
}

TEST(Host, UserOverridesAHostArgumentByKey) {
  const auto line = boot::merge_cmdline("console=ttyS0 clearcpuid=popcnt", host_kernel_args(HostKind::kNestedPvm));
  EXPECT_NE(line.find("clearcpuid=popcnt"), std::string::npos);
  EXPECT_EQ(line.find("clearcpuid=308"), std::string::npos);
  EXPECT_NE(line.find("noxsave"), std::string::npos);
  // A user's own initcall_blacklist replaces kiln's.
  const auto own = boot::merge_cmdline("initcall_blacklist=foo_init", host_kernel_args(HostKind::kNestedPvm));
  EXPECT_NE(own.find("initcall_blacklist=foo_init"), std::string::npos) << own;
  EXPECT_EQ(own.find("ftrace_check_for_weak_functions"), std::string::npos) << own;
}

}  // namespace
}  // namespace kiln
