#include "vmm/exit_status.h"

#include <set>

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(ExitStatus, EachEndHasItsDocumentedCode) {
  EXPECT_EQ((VmExitStatus{VmEnd::kPowerOff}).exit_code(), 0);
  EXPECT_EQ((VmExitStatus{VmEnd::kUserQuit}).exit_code(), 0);
  EXPECT_EQ((VmExitStatus{VmEnd::kVmmError}).exit_code(), 1);
  EXPECT_EQ((VmExitStatus{VmEnd::kReset}).exit_code(), 2);
  EXPECT_EQ((VmExitStatus{VmEnd::kTripleFault}).exit_code(), 3);
  EXPECT_EQ((VmExitStatus{VmEnd::kPanic}).exit_code(), 4);
  EXPECT_EQ((VmExitStatus{VmEnd::kCrash}).exit_code(), 5);
  EXPECT_EQ((VmExitStatus{VmEnd::kSignal}).exit_code(), 6);
  EXPECT_EQ((VmExitStatus{VmEnd::kDebugExit, 42}).exit_code(), 42);
}

TEST(ExitStatus, KilnsOwnCodesAreDistinctAndDocumented) {
  std::set<int> codes;
  for (auto e : {VmEnd::kVmmError, VmEnd::kReset, VmEnd::kTripleFault, VmEnd::kPanic, VmEnd::kCrash, VmEnd::kSignal})
    EXPECT_TRUE(codes.insert(VmExitStatus{e}.exit_code()).second);
  for (int c : codes) EXPECT_NE(std::string(kExitCodeHelp).find("  " + std::to_string(c) + "  "), std::string::npos) << c;
}

TEST(ExitStatus, DescribeSaysWhatHappened) {
  EXPECT_EQ((VmExitStatus{VmEnd::kPanic}).describe(), "guest kernel panicked (exit status 4)");
  EXPECT_NE((VmExitStatus{VmEnd::kDebugExit, 7}).describe().find("wrote 7"), std::string::npos);
}

}  // namespace
}  // namespace kiln
