#include "vmm/machine.h"

#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <fmt/ranges.h>

#include "arch/x86/layout.h"
#include "base/log.h"

namespace kiln {

namespace {

// The signal that kicks a vCPU thread out of KVM_RUN; its handler does nothing.
int kick_signal() { return SIGRTMIN + 1; }

void install_kick_handler() {
  struct sigaction sa{};
  sa.sa_handler = [](int) {};
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
  ::sigaction(kick_signal(), &sa, nullptr);
}

constexpr const char* kExitNames[] = {"io_in",     "io_out",          "mmio_read", "mmio_write",
                                      "hlt",       "shutdown",        "system_event", "internal_error",
                                      "fail_entry", "interrupted",    "debug",     "msr_write", "unknown"};
static_assert(std::size(kExitNames) == std::variant_size_v<kvm::VcpuExit>);

}  // namespace

Machine::~Machine() {
  if (!stopping_) request_stop({VmEnd::kVmmError, 0, "machine destroyed"});
  kick_vcpus();
  for (auto& t : vcpu_threads_)
    if (t.joinable()) t.join();
  stop_watching();
  cancel_loop_timers();
}

void Machine::cancel_loop_timers() {
  auto cancel = [this](std::optional<EventLoop::TimerId>& t) {
    if (t) (void)loop_->cancel_timer(*t);
    t.reset();
  };
  if (profiling_) cancel(profiling_->timer);
  if (syscall_fix_) cancel(syscall_fix_->timer);
  cancel(coalesced_timer_);
}

void Machine::stop_watching() {
  if (loop_ == nullptr) return;
  // It may not be watched (no input, EOF, paused, or never started): nothing to undo then.
  if (console_in_ >= 0) (void)loop_->remove(console_in_);
}

void Machine::request_stop(VmExitStatus status) {
  {
    std::lock_guard lock(mu_);
    if (status_) return;
    // After the kernel announced a panic, the reboot or triple fault that follows is that panic.
    if (panic_seen_ && (status.end == VmEnd::kReset || status.end == VmEnd::kTripleFault)) {
      status = {VmEnd::kPanic, 0,
                "seen on the console, then " + (status.end == VmEnd::kReset ? status.detail : std::string("a triple fault"))};
    }
    status_ = std::move(status);
    stopping_ = true;
  }
  cv_.notify_all();
  // Paused vCPUs wake for this; running ones see stopping_ when kicked out of KVM_RUN.
  for (auto& box : mailboxes_) (void)box->post(VcpuMailbox::Kind::kStop);
  kick_vcpus();
}

void Machine::kick_vcpus() {
  std::lock_guard lock(kick_mu_);
  for (std::size_t i = 0; i < vcpus_.size(); ++i) kick_vcpu_locked(i);
}

void Machine::kick_vcpu(std::size_t index) {
  std::lock_guard lock(kick_mu_);
  if (index < vcpus_.size()) kick_vcpu_locked(index);
}

void Machine::kick_vcpu_locked(std::size_t index) {
  vcpus_[index]->set_immediate_exit(true);
  if (index < vcpu_tids_.size() && vcpu_tids_[index]) ::pthread_kill(*vcpu_tids_[index], kick_signal());
}

void Machine::on_console_event(ConsoleOutput::Event e) {
  switch (e) {
    case ConsoleOutput::Event::kPanicStart: {
      std::lock_guard lock(mu_);
      panic_seen_ = true;
      // The kernel prints its trace, tells pvpanic, then halts or reboots; give it a moment.
      console_ending_ = {std::chrono::steady_clock::now() + std::chrono::seconds(3),
                         {VmEnd::kPanic, 0, "seen on the console"}};
      cv_.notify_all();
      break;
    }
    case ConsoleOutput::Event::kPanicEnd: request_stop({VmEnd::kPanic, 0, "seen on the console"}); break;
    case ConsoleOutput::Event::kPowerOff: {
      // The kernel prints "Power down" just before it writes the ACPI sleep register; a kernel
      // without ACPI halts instead, and this ending is taken.
      std::lock_guard lock(mu_);
      if (!console_ending_)
        console_ending_ = {std::chrono::steady_clock::now() + std::chrono::seconds(2),
                           {VmEnd::kPowerOff, 0, "the kernel's console said 'Power down'"}};
      cv_.notify_all();
      break;
    }
  }
}

void Machine::on_console_input() {
  std::byte buf[256];
  const ssize_t n = ::read(console_in_, buf, sizeof(buf));
  if (n <= 0) {
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    (void)loop_->remove(console_in_);  // EOF: no more input, the guest goes on
    return;
  }
  auto r = escape_.feed(std::span(buf, static_cast<std::size_t>(n)));
  if (!r.forward.empty())
    serial_dev_->with_core([&](Serial16550& uart) {
      return uart.enqueue_input(std::as_bytes(std::span(r.forward.data(), r.forward.size())));
    });
  if (r.quit) request_stop({VmEnd::kUserQuit, 0, {}});
}

VmExitStatus Machine::run() {
  if (auto r = start(); !r) return {VmEnd::kVmmError, 0, r.error().message()};
  return wait();
}

void Machine::watch_console_input() {
  if (console_in_ < 0) return;
  // Not every input can be watched (a regular file cannot): then the guest gets no input.
  if (auto r = loop_->add(console_in_, EPOLLIN, [this](std::uint32_t) { on_console_input(); }); !r)
    SPDLOG_DEBUG("console input not watched: {}", r.error().message());
}

Result<void> Machine::start() {
  install_kick_handler();
  if (loop_ == nullptr) return plain_error("the machine has no event loop to serve its console on");
  watch_console_input();

  if (profiling_) {
    profiling_->started = std::chrono::steady_clock::now();
    const auto period = std::chrono::nanoseconds(1'000'000'000 / profiling_->hz);
    auto t = loop_->add_timer(period, period, [this] {
      for (std::size_t i = 0; i < vcpus_.size(); ++i) profiling_->wanted[i].store(true, std::memory_order_relaxed);
      kick_vcpus();
    });
    if (!t) return std::unexpected(with_context(t.error(), "--profile's timer"));
    profiling_->timer = *t;
  }
  if (syscall_fix_) {
    auto t = loop_->add_timer(std::chrono::milliseconds(100), std::chrono::milliseconds(100), [this] {
      SyscallFix& f = *syscall_fix_;
      if (f.given_up.load(std::memory_order_relaxed)) return;
      if (f.installed.load(std::memory_order_relaxed) && ++f.ticks % 20 != 0) return;
      f.wanted.store(true, std::memory_order_relaxed);
      kick_vcpu(0);
    });
    if (!t) return std::unexpected(with_context(t.error(), "the syscall fix's timer"));
    syscall_fix_->timer = *t;
  }
  if (coalesced_) {
    auto t = loop_->add_timer(std::chrono::milliseconds(100), std::chrono::milliseconds(100),
                              [this] { drain_coalesced(); });
    if (!t) return std::unexpected(with_context(t.error(), "the console's timer"));
    coalesced_timer_ = *t;
  }
  for (std::size_t i = 0; i < vcpus_.size(); ++i) {
    vcpu_threads_.emplace_back([this, i] {
      {
        std::lock_guard lock(kick_mu_);
        vcpu_tids_[i] = ::pthread_self();
      }
      drive_vcpu(*mailboxes_[i], [this, i] { return run_vcpu_once(i); });
      std::lock_guard lock(kick_mu_);
      vcpu_tids_[i].reset();
    });
  }
  return {};
}

bool Machine::post_to_vcpus(VcpuMailbox::Kind kind, std::chrono::milliseconds limit, std::size_t& answered_ok) {
  std::vector<std::future<VcpuMailbox::Reply>> answers;
  for (auto& box : mailboxes_) answers.push_back(box->post(kind));
  kick_vcpus();
  const auto deadline = std::chrono::steady_clock::now() + limit;
  answered_ok = 0;
  bool all = true;
  for (auto& a : answers) {
    if (a.wait_until(deadline) != std::future_status::ready) {
      all = false;
      continue;
    }
    if (a.get().ok) ++answered_ok;
  }
  return all;
}

Result<void> Machine::pause() {
  // A vCPU leaves KVM_RUN within microseconds of its kick; one in the middle of a long exit (the
  // emulation fallback) takes longer, but not seconds.
  std::size_t paused = 0;
  if (!post_to_vcpus(VcpuMailbox::Kind::kPause, std::chrono::seconds(10), paused)) {
    std::size_t resumed = 0;
    (void)post_to_vcpus(VcpuMailbox::Kind::kResume, std::chrono::seconds(10), resumed);
    return plain_error("{} of {} vCPUs did not stop within 10 s; the VM goes on", vcpus_.size() - paused,
                       vcpus_.size());
  }
  // Device work stops too: no console input reaches the UART while paused.
  if (console_in_ >= 0) (void)loop_->remove(console_in_);
  return {};
}

Result<void> Machine::resume() {
  watch_console_input();
  std::size_t resumed = 0;
  if (!post_to_vcpus(VcpuMailbox::Kind::kResume, std::chrono::seconds(10), resumed))
    return plain_error("{} of {} vCPUs did not answer the resume within 10 s", vcpus_.size() - resumed, vcpus_.size());
  return {};
}

Result<void> Machine::send_ctrl_alt_del() {
  if (!i8042_dev_->with_core([](I8042& kbd) { return kbd.press_ctrl_alt_del(); }))
    return plain_error("the guest has not read the keys sent before; try again later");
  return {};
}

std::vector<kvm::Counter> Machine::kvm_counters() const {
  std::vector<kvm::Counter> sum;
  for (const auto& stats : vcpu_stats_) {
    if (!stats) return {};  // Linux before 5.14: no counters to show
    if (auto now = stats->read()) kvm::add_counters(sum, *now);
  }
  return sum;
}

std::string Machine::counters_report(double seconds) const {
  std::vector<profile::NamedCount> kvm;
  for (auto& c : kvm_counters()) kvm.push_back({std::move(c.name), c.value});
  std::vector<profile::NamedCount> own;
  for (std::size_t i = 0; i < exit_counts_.size(); ++i) own.push_back({kExitNames[i], exit_counts_[i].load()});
  own.push_back({"tsc_deadline_writes", deadline_writes_.load()});
  own.push_back({"coalesced_writes (no exit)", coalesced_writes_.load()});
  std::string out = profile::counts_section(
      "KVM's counters, all vCPUs (KVM_GET_STATS_FD; most never reach kiln as exits):", kvm, seconds);
  out += profile::counts_section("exits to kiln, all vCPUs:", own, seconds);
  return out;
}

nlohmann::json Machine::metrics() const {
  nlohmann::json exits = nlohmann::json::object();
  for (std::size_t i = 0; i < exit_counts_.size(); ++i) exits[kExitNames[i]] = exit_counts_[i].load();
  nlohmann::json emulated = nlohmann::json::object();
  {
    std::lock_guard stats(stats_mu_);
    for (const auto& [name, count] : emulated_) emulated[name] = count;
  }
  const auto serial = serial_dev_->with_core([](Serial16550& uart) { return uart.counters(); });
  const nlohmann::json serial_json = {{"tx_bytes", serial.tx_bytes},
                                      {"rx_bytes", serial.rx_bytes},
                                      {"dropped_input", serial.dropped_input}};
  nlohmann::json kvm = nlohmann::json::object();
  for (const auto& c : kvm_counters()) kvm[c.name] = c.value;
  return {{"vcpu_exits", exits},
          {"kvm_counters", kvm},
          {"emulation_fallback", emulated},
          {"port_io", {{"unclaimed_accesses", pio_.unclaimed_accesses()},
                       {"coalesced_writes", coalesced_writes_.load()}}},
          {"mmio", {{"unclaimed_accesses", mmio_.unclaimed_accesses()}}},
          {"serial", serial_json},
          {"timer_pacing", {{"floor_us", pacer_ ? pacer_->floor_us() : 0},
                            {"deadline_writes", deadline_writes_.load()},
                            {"deadlines_paced", deadlines_paced_.load()}}},
          {"virtio", virtio_ ? virtio_->metrics() : nlohmann::json::object()}};
}

VmExitStatus Machine::wait() {
  std::unique_lock lock(mu_);
  while (!status_) {
    if (console_ending_) {
      if (cv_.wait_until(lock, console_ending_->deadline) == std::cv_status::timeout && !status_) {
        // As any other ending: paused vCPUs must hear of it too.
        const VmExitStatus announced = console_ending_->status;
        lock.unlock();
        request_stop(announced);
        lock.lock();
      }
    } else {
      cv_.wait(lock);
    }
  }
  VmExitStatus result = *status_;
  lock.unlock();

  kick_vcpus();
  for (auto& t : vcpu_threads_) t.join();
  vcpu_threads_.clear();
  stop_watching();
  cancel_loop_timers();
  drain_coalesced();  // what the guest printed last, if no exit followed it
  if (profiling_) write_profile();

  {
    std::lock_guard stats(stats_mu_);
    if (!emulated_.empty()) {
      std::string list;
      for (const auto& [name, count] : emulated_) list += fmt::format("{}{} x{}", list.empty() ? "" : ", ", name, count);
      SPDLOG_INFO("instructions emulated for the host: {}", list);
    }
  }
  std::string exits;
  for (std::size_t i = 0; i < exit_counts_.size(); ++i)
    if (auto n = exit_counts_[i].load(); n > 0) exits += fmt::format("{}{} {}", exits.empty() ? "" : ", ", kExitNames[i], n);
  SPDLOG_DEBUG("exits: {}", exits);
  if (spdlog::should_log(spdlog::level::debug)) {
    std::string kvm;
    for (const auto& c : kvm_counters())
      if (c.value > 0) kvm += fmt::format("{}{} {}", kvm.empty() ? "" : ", ", c.name, c.value);
    if (!kvm.empty()) SPDLOG_DEBUG("KVM's counters: {}", kvm);
  }
  if (pacer_)
    SPDLOG_DEBUG("timer pacing: {} TSC-deadline writes, {} of them moved to the {} us floor", deadline_writes_.load(),
                 deadlines_paced_.load(), pacer_->floor_us());
  if (virtio_) SPDLOG_DEBUG("virtio: {}", virtio_->metrics().dump());
  if (pio_.unclaimed_accesses() > 0) SPDLOG_DEBUG("unclaimed port I/O accesses: {}", pio_.unclaimed_accesses());
  return result;
}

}  // namespace kiln
