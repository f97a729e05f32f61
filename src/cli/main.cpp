// kiln: one process, one VM.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <initializer_list>
#include <cstdio>
#include <thread>

#include "base/log.h"
#include "cli/flags.h"
#include "cli/terminal.h"
#include "vmm/machine.h"

namespace {

// SIGTERM, SIGINT and SIGHUP are blocked in every thread and taken by one thread that asks the
// machine to stop, so the terminal is restored and the exit status says what happened.
class StopSignals {
 public:
  StopSignals() {
    sigemptyset(&set_);
    for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&set_, s);
    ::pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  }
  void watch(kiln::Machine& m) {
    thread_ = std::thread([this, &m] {
      const timespec tick{0, 100'000'000};
      while (!done_) {
        const int s = ::sigtimedwait(&set_, nullptr, &tick);
        if (s > 0) m.request_stop({kiln::VmEnd::kSignal, 0, ::strsignal(s)});
      }
    });
  }
  ~StopSignals() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  sigset_t set_{};
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  auto parsed = kiln::parse_command_line(std::vector<std::string>(argv, argv + argc));
  if (!parsed) {
    std::fprintf(stderr, "kiln: %s\n", parsed.error().message().c_str());
    return kiln::kExitVmmError;
  }
  if (auto* text = std::get_if<kiln::ShowText>(&*parsed)) {
    std::fputs(text->text.c_str(), stdout);
    return 0;
  }
  auto& cmd = std::get<kiln::RunCommand>(*parsed);
  kiln::init_logging(cmd.log_level);

  StopSignals signals;
  auto machine = kiln::Machine::create(cmd.config, {.console_in = STDIN_FILENO, .console_out = STDOUT_FILENO});
  if (!machine) {
    spdlog::error("{}", machine.error().message());
    return kiln::kExitVmmError;
  }
  kiln::VmExitStatus status;
  {
    const bool interactive = cmd.config.kiln.serial.mode == kiln::SerialConfig::Mode::kStdio;
    kiln::RawTerminal terminal(interactive ? STDIN_FILENO : -1);
    signals.watch(**machine);
    status = (*machine)->run();
  }
  if (status.end == kiln::VmEnd::kVmmError) spdlog::error("{}", status.describe());
  else spdlog::info("{}", status.describe());
  return status.exit_code();
}
