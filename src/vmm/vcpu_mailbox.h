#pragma once
// How the rest of kiln talks to a vCPU thread: messages (pause, resume, stop, or "call this on your
// thread", which a snapshot uses to save the vCPU's state) that the thread handles between two
// KVM_RUNs, each answered through a future. The sender kicks the thread out of KVM_RUN afterwards
// (signal + immediate_exit); the thread's check for mail is one atomic load per exit. No KVM here:
// drive_vcpu() is the thread's whole control flow around a `run_once` it is given, so tests drive it
// with a stand-in for KVM_RUN.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>

namespace kiln {

class VcpuMailbox {
 public:
  enum class Kind { kPause, kResume, kStop, kCall };
  struct Reply {
    bool ok = true;
    std::string error;
  };
  struct Message {
    Kind kind;
    std::function<void()> call;  // for kCall
    std::promise<Reply> reply;
  };

  // Any thread. The future is answered once the vCPU thread has handled the message (paused,
  // resumed, called), or with ok = false if the thread has ended.
  std::future<Reply> post(Kind kind, std::function<void()> call = {});
  [[nodiscard]] bool pending() const { return pending_.load(std::memory_order_acquire); }

  // The vCPU thread: the next message, if any / when it comes.
  std::optional<Message> take();
  Message wait();
  // The vCPU thread, as it ends: every message still queued, and any posted later, is answered
  // with ok = false.
  void close(const std::string& why);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Message> queue_;
  std::atomic<bool> pending_{false};
  bool closed_ = false;
  std::string closed_why_;
};

// A vCPU thread's loop: handles its mail, then calls run_once() (one KVM_RUN and the exit it
// returns) while that returns true. Paused, it handles only mail until a resume or a stop. It
// returns on a stop message or when run_once() returns false, closing the mailbox.
void drive_vcpu(VcpuMailbox& box, const std::function<bool()>& run_once);

}  // namespace kiln
