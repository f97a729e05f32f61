#include "api/posted_backend.h"

#include <future>
#include <thread>

#include <gtest/gtest.h>

namespace kiln::api {
namespace {

// Records which thread each call ran on.
struct ThreadRecordingBackend : VmBackend {
  std::thread::id last;
  int calls = 0;
  Result<void> note() {
    last = std::this_thread::get_id();
    ++calls;
    return {};
  }
  Result<void> configure_logger(const LoggerConfig&) override { return note(); }
  Result<void> configure_metrics(const MetricsConfig&) override { return note(); }
  void machine_config_changed(const MachineConfig&) override { (void)note(); }
  Result<void> check_drive(const DriveConfig&) override { return note(); }
  Result<void> update_drive(const DriveConfig&) override { return note(); }
  Result<void> start(const VmConfig&) override { return note(); }
  Result<void> pause() override {
    (void)note();
    return plain_error("paused already");
  }
  Result<void> resume() override { return note(); }
  Result<void> send_ctrl_alt_del() override { return note(); }
  Result<void> flush_metrics() override { return note(); }
};

TEST(PostedBackend, CallsRunOnTheLoopsThreadAndBringTheirAnswerBack) {
  auto loop = std::move(*EventLoop::create());
  ThreadRecordingBackend inner;
  PostedBackend posted(*loop, inner);
  std::thread vmm([&] { (void)loop->run(); });
  const auto vmm_id = vmm.get_id();
  EXPECT_TRUE(posted.start(VmConfig{}));
  EXPECT_EQ(inner.last, vmm_id);
  auto r = posted.pause();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "paused already") << "the inner answer, unchanged";
  posted.machine_config_changed({});
  EXPECT_EQ(inner.calls, 3);
  // On the loop's own thread a call goes straight through (posting there would wait for itself).
  std::promise<bool> direct;
  loop->post([&] { direct.set_value(posted.resume().has_value() && inner.last == std::this_thread::get_id()); });
  EXPECT_TRUE(direct.get_future().get());
  loop->stop();
  vmm.join();
}

TEST(PostedBackend, OnceTheLoopHasStoppedACallFailsInsteadOfWaiting) {
  auto loop = std::move(*EventLoop::create());
  ThreadRecordingBackend inner;
  PostedBackend posted(*loop, inner);
  std::thread vmm([&] { (void)loop->run(); });
  loop->stop();
  vmm.join();
  auto r = posted.flush_metrics();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("stopped"), std::string::npos) << r.error().message();
  EXPECT_EQ(inner.calls, 0);
}

}  // namespace
}  // namespace kiln::api
