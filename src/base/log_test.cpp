#include "base/log.h"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(RateLimit, OneLinePerPeriodAndTheRestCounted) {
  RateLimit limit(std::chrono::milliseconds(200));
  EXPECT_TRUE(limit.allow());
  EXPECT_FALSE(limit.allow());
  EXPECT_FALSE(limit.allow());
  EXPECT_EQ(limit.suppressed_note(), " (2 similar lines suppressed)");
  EXPECT_EQ(limit.suppressed_note(), "") << "the count starts again";
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  EXPECT_TRUE(limit.allow());
  EXPECT_EQ(limit.suppressed_total(), 2u);
}

TEST(RateLimit, ThreadsRacingForTheSlotLetExactlyOneThrough) {
  RateLimit limit(std::chrono::hours(1));
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i)
        if (limit.allow()) ++allowed;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 1);
  EXPECT_EQ(limit.suppressed_total(), 3999u);
}

}  // namespace
}  // namespace kiln
