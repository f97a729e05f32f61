#include "vmm/vcpu_mailbox.h"

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

namespace kiln {
namespace {

using namespace std::chrono_literals;

// A stand-in for KVM_RUN: counts its runs; a kick is not needed, since it returns at once.
struct FakeVcpu {
  std::atomic<long> runs{0};
  std::atomic<bool> end{false};
  VcpuMailbox box;
  std::thread thread{[this] {
    drive_vcpu(box, [this] {
      ++runs;
      std::this_thread::sleep_for(100us);
      return !end.load();
    });
  }};
  ~FakeVcpu() {
    (void)box.post(VcpuMailbox::Kind::kStop);
    thread.join();
  }
  bool ok(std::future<VcpuMailbox::Reply> f) {
    if (f.wait_for(10s) != std::future_status::ready) return false;
    return f.get().ok;
  }
};

TEST(VcpuMailbox, PauseStopsTheRunsUntilResume) {
  FakeVcpu v;
  while (v.runs < 10) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(v.ok(v.box.post(VcpuMailbox::Kind::kPause)));
  const long at_pause = v.runs;
  std::this_thread::sleep_for(50ms);  // ~500 runs' worth
  EXPECT_EQ(v.runs, at_pause) << "no run while paused";
  ASSERT_TRUE(v.ok(v.box.post(VcpuMailbox::Kind::kResume)));
  const auto t0 = std::chrono::steady_clock::now();
  while (v.runs < at_pause + 10 && std::chrono::steady_clock::now() - t0 < 10s) std::this_thread::sleep_for(1ms);
  EXPECT_GE(v.runs, at_pause + 10) << "runs again after resume";
}

TEST(VcpuMailbox, CallsRunOnTheVcpuThreadEvenWhilePaused) {
  FakeVcpu v;
  std::thread::id called_on;
  ASSERT_TRUE(v.ok(v.box.post(VcpuMailbox::Kind::kPause)));
  const long at_pause = v.runs;
  ASSERT_TRUE(v.ok(v.box.post(VcpuMailbox::Kind::kCall, [&] { called_on = std::this_thread::get_id(); })));
  EXPECT_EQ(called_on, v.thread.get_id());
  EXPECT_EQ(v.runs, at_pause) << "a call does not resume";
}

TEST(VcpuMailbox, StopEndsTheThreadPausedOrNotAndLaterMailIsRefused) {
  for (bool pause_first : {false, true}) {
    auto v = std::make_unique<FakeVcpu>();
    if (pause_first) {
      ASSERT_TRUE(v->ok(v->box.post(VcpuMailbox::Kind::kPause)));
    }
    ASSERT_TRUE(v->ok(v->box.post(VcpuMailbox::Kind::kStop)));
    v->thread.join();
    auto late = v->box.post(VcpuMailbox::Kind::kPause);
    ASSERT_EQ(late.wait_for(1s), std::future_status::ready);
    EXPECT_FALSE(late.get().ok) << "nobody is there to pause";
    v->thread = std::thread([] {});  // for the destructor's join
  }
}

TEST(VcpuMailbox, AVcpuThatEndsByItselfAnswersWhatWasWaiting) {
  VcpuMailbox box;
  std::future<VcpuMailbox::Reply> queued;
  std::thread t([&] {
    drive_vcpu(box, [&] {
      // The guest ends the VM while a pause is on its way.
      if (!queued.valid()) queued = box.post(VcpuMailbox::Kind::kCall, [] {});
      return false;
    });
  });
  t.join();
  ASSERT_TRUE(queued.valid());
  ASSERT_EQ(queued.wait_for(1s), std::future_status::ready);
  EXPECT_FALSE(queued.get().ok);
}

}  // namespace
}  // namespace kiln
