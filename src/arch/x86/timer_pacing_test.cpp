#include "arch/x86/timer_pacing.h"

#include <limits>

#include <gtest/gtest.h>

namespace kiln::x86 {
namespace {

TEST(TimerPacer, TheFloorIsInTscCyclesAtTheGivenRate) {
  EXPECT_EQ(TimerPacer(10'000, 2'596'120).floor_tsc(), 25'961'200u);  // 10 ms at 2.596 GHz
  EXPECT_EQ(TimerPacer(1, 1'000'000).floor_tsc(), 1'000u);
  EXPECT_EQ(TimerPacer(10'000, 2'596'120).floor_us(), 10'000u);
}

TEST(TimerPacer, ADeadlineSoonerThanTheFloorMovesToIt) {
  const TimerPacer p(10'000, 1'000'000);  // floor: 10'000'000 cycles
  EXPECT_EQ(p.pace(5'000'000, 1'000'000), 11'000'000u);  // 4 ms ahead -> 10 ms ahead
  EXPECT_EQ(p.pace(1, 1'000'000), 11'000'000u);          // already past
}

TEST(TimerPacer, ADeadlineAtOrPastTheFloorIsKept) {
  const TimerPacer p(10'000, 1'000'000);
  EXPECT_EQ(p.pace(11'000'000, 1'000'000), 11'000'000u);
  EXPECT_EQ(p.pace(500'000'000, 1'000'000), 500'000'000u);
}

TEST(TimerPacer, DisarmingStaysDisarming) {
  EXPECT_EQ(TimerPacer(10'000, 1'000'000).pace(0, 123'456), 0u);
}

TEST(TimerPacer, AGuestTscNearItsEndIsNotPacedRatherThanWrapped) {
  // A guest may set its own TSC anywhere (MSR 0x10); the floor would overflow there, and the
  // deadline is left as the guest wrote it.
  const TimerPacer p(10'000, 1'000'000);
  const std::uint64_t near_end = std::numeric_limits<std::uint64_t>::max() - 5;
  EXPECT_EQ(p.pace(near_end + 2, near_end), near_end + 2);
}

}  // namespace
}  // namespace kiln::x86
