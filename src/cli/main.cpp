// kiln: one process, one VM.
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <initializer_list>
#include <cstdio>

#include "base/log.h"
#include "cli/flags.h"
#include "cli/terminal.h"
#include "vmm/machine.h"

namespace {

// SIGTERM, SIGINT and SIGHUP are blocked in every thread (threads inherit the mask) and read from
// a signalfd by the VMM's event loop, which stops the VM: the terminal is restored and the exit
// status says what happened.
kiln::UniqueFd block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, s);
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return kiln::UniqueFd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
}

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

  const kiln::UniqueFd stop_signals = block_stop_signals();
  auto machine = kiln::Machine::create(
      cmd.config, {.console_in = STDIN_FILENO, .console_out = STDOUT_FILENO, .stop_signals = stop_signals.get()});
  if (!machine) {
    spdlog::error("{}", machine.error().message());
    return kiln::kExitVmmError;
  }
  kiln::VmExitStatus status;
  {
    const bool interactive = cmd.config.kiln.serial.mode == kiln::SerialConfig::Mode::kStdio;
    kiln::RawTerminal terminal(interactive ? STDIN_FILENO : -1);
    status = (*machine)->run();
  }
  if (status.end == kiln::VmEnd::kVmmError) spdlog::error("{}", status.describe());
  else spdlog::info("{}", status.describe());
  return status.exit_code();
}
