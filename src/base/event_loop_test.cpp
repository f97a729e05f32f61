#include "base/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <thread>
#include <vector>

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

TEST(EventLoop, PostedWorkRunsOnTheLoopsThreadInOrder) {
  auto loop = std::move(*EventLoop::create());
  std::vector<int> order;
  std::thread::id ran_on;
  std::thread poster([&] {
    for (int i = 0; i < 100; ++i) loop->post([&, i] { order.push_back(i); });
    loop->post([&] {
      ran_on = std::this_thread::get_id();
      loop->stop();
    });
  });
  ASSERT_TRUE(loop->run());
  poster.join();
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[static_cast<std::size_t>(i)], i);
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  bool ran = false;
  loop->post([&] { ran = true; });  // after stop(): dropped
  EXPECT_FALSE(ran);
}

TEST(EventLoop, OneShotAndPeriodicTimersFireAndCancelledOnesDoNot) {
  auto loop = std::move(*EventLoop::create());
  using namespace std::chrono_literals;
  int once = 0, ticks = 0, cancelled = 0;
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(loop->add_timer(20ms, 0ms, [&] { ++once; }));
  auto doomed = loop->add_timer(30ms, 0ms, [&] { ++cancelled; });
  ASSERT_TRUE(doomed);
  ASSERT_TRUE(loop->cancel_timer(*doomed));
  EXPECT_FALSE(loop->cancel_timer(*doomed)) << "already gone";
  EventLoop::TimerId periodic = -1;
  auto p = loop->add_timer(5ms, 5ms, [&] {
    if (++ticks == 5) {
      EXPECT_TRUE(loop->cancel_timer(periodic));
      ASSERT_TRUE(loop->add_timer(50ms, 0ms, [&] { loop->stop(); }));
    }
  });
  ASSERT_TRUE(p);
  periodic = *p;
  ASSERT_TRUE(loop->run());
  EXPECT_EQ(once, 1);
  EXPECT_EQ(ticks, 5) << "no tick after its own cancel";
  EXPECT_EQ(cancelled, 0);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 25ms + 50ms);
}

TEST(PollWindow, GrowsWhileEventsComeSoonShrinksToNothingWhenTheyDoNot) {
  using namespace std::chrono_literals;
  PollWindow w(32us);
  EXPECT_EQ(w.current(), 0ns) << "no spinning until events are seen to come close together";
  w.waited(10us, false);
  EXPECT_EQ(w.current(), PollWindow::kStart);
  w.waited(10us, false);
  w.waited(10us, false);
  w.waited(10us, false);
  EXPECT_EQ(w.current(), 32us) << "doubles, capped at the maximum";
  w.waited(3us, true);
  EXPECT_EQ(w.current(), 32us) << "spinning found it: kept";
  w.waited(1ms, false);
  EXPECT_EQ(w.current(), 16us) << "a long sleep halves it";
  for (int i = 0; i < 4; ++i) w.waited(1ms, false);
  EXPECT_EQ(w.current(), 0ns) << "and an idle loop stops spinning";
  PollWindow off(0ns);
  off.waited(1us, false);
  EXPECT_EQ(off.current(), 0ns) << "a maximum of 0 never spins";
}

TEST(EventLoop, APollingLoopStillSleepsAndRunsEveryHandler) {
  using namespace std::chrono_literals;
  auto loop = std::move(*EventLoop::create());
  loop->set_max_poll(50us);
  int ticks = 0;
  ASSERT_TRUE(loop->add_timer(1ms, 20us, [&] {
    if (++ticks == 200) loop->stop();
  }));
  ASSERT_TRUE(loop->run());
  EXPECT_EQ(ticks, 200);
}

}  // namespace
}  // namespace kiln
