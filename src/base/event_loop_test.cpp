#include "base/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <thread>

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(EventLoop, RunsHandlerAndStops) {
  auto created = EventLoop::create();
  ASSERT_TRUE(created);
  auto& loop = *created;
  UniqueFd efd(::eventfd(0, EFD_NONBLOCK));
  // An eventfd adds writes up: under load two writes can make one wake-up. So the handler counts
  // what it reads, not how often it runs, and the loop stops once all three writes arrived.
  int calls = 0;
  std::uint64_t seen = 0;
  ASSERT_TRUE(loop->add(efd.get(), EPOLLIN, [&](std::uint32_t) {
    std::uint64_t v = 0;
    ASSERT_EQ(::read(efd.get(), &v, sizeof(v)), 8);
    ++calls;
    if ((seen += v) == 3) loop->stop();
  }));
  std::thread writer([&] {
    for (int i = 0; i < 3; ++i) {
      const std::uint64_t one = 1;
      ASSERT_EQ(::write(efd.get(), &one, sizeof(one)), 8);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  ASSERT_TRUE(loop->run());
  writer.join();
  EXPECT_EQ(seen, 3u);
  EXPECT_GE(calls, 1);
  EXPECT_LE(calls, 3);
}

TEST(EventLoop, StopFromAnotherThreadWakesRun) {
  auto created = EventLoop::create();
  ASSERT_TRUE(created);
  auto& loop = *created;
  std::thread t([&] { loop->stop(); });
  EXPECT_TRUE(loop->run());
  t.join();
}

}  // namespace
}  // namespace kiln
