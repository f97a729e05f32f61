#include "boot/cmdline.h"

#include <gtest/gtest.h>

namespace kiln::boot {
namespace {

TEST(Cmdline, SplitKeepsQuotedSpaces) {
  auto p = split_params("  console=ttyS0  init=/bin/sh  foo=\"a b\" quiet");
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[2], "foo=\"a b\"");
  EXPECT_EQ(param_key(p[0]), "console");
  EXPECT_EQ(param_key(p[3]), "quiet");
}

TEST(Cmdline, UserWinsOverKilnsAdditions) {
  std::vector<std::string> added;
  auto s = merge_cmdline("console=hvc0 quiet", {"console=ttyS0", "noxsave", "io_delay=none"}, &added);
  EXPECT_EQ(s, "console=hvc0 quiet noxsave io_delay=none");
  EXPECT_EQ(added, (std::vector<std::string>{"noxsave", "io_delay=none"}));
}

TEST(Cmdline, AdditionsGoBeforeInitArguments) {
  auto s = merge_cmdline("console=ttyS0 -- single", {"noxsave"});
  EXPECT_EQ(s, "console=ttyS0 noxsave -- single");
}

TEST(Cmdline, EmptyUserLine) {
  EXPECT_EQ(merge_cmdline("", {"a=1", "b"}), "a=1 b");
}

}  // namespace
}  // namespace kiln::boot
