// kiln: one process, one VM.
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <thread>
#include <cstdio>

#include "api/controller.h"
#include "api/http_server.h"
#include "api/posted_backend.h"
#include "base/event_loop.h"
#include "base/log.h"
#include "cli/flags.h"
#include "cli/terminal.h"
#include "cli/vmm_backend.h"

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
  ::signal(SIGPIPE, SIG_IGN);  // a client that hangs up is the API server's business, not a reason to die

  const kiln::UniqueFd stop_signals = block_stop_signals();
  // The VMM thread: an event loop that carries out what the API asks (build and start the VM,
  // pause, resume, open the log and metrics files) and fires the metrics timer. The API thread only
  // parses and validates, and posts its calls there (api::PostedBackend).
  auto loop = kiln::EventLoop::create();
  if (!loop) {
    SPDLOG_ERROR("{}", loop.error().message());
    return kiln::kExitVmmError;
  }
  // The metadata service's store: the API writes it, the VM's metadata service reads it.
  auto mmds_store = std::make_shared<kiln::mmds::DataStore>(cmd.mmds_size_limit);
  if (cmd.metadata) {
    if (auto r = mmds_store->put(*cmd.metadata); !r) {
      SPDLOG_ERROR("--metadata: {}", r.error().message());
      return kiln::kExitVmmError;
    }
  }
  kiln::VmmBackend backend({.console_in = STDIN_FILENO,
                            .console_out = STDOUT_FILENO,
                            .stop_signals = stop_signals.get(),
                            .loop = nullptr,
                            .mmds_store = mmds_store},
                           **loop);
  // Started once the API socket listens, so that nothing delays that; a request that comes first
  // waits in the loop's queue. Stopped and joined on every way out of main.
  struct VmmThread {
    kiln::EventLoop& loop;
    std::thread thread;
    void start() {
      thread = std::thread([this] {
        if (auto r = loop.run(); !r) SPDLOG_ERROR("the VMM thread's event loop: {}", r.error().message());
      });
    }
    ~VmmThread() {
      loop.stop();
      if (thread.joinable()) thread.join();
    }
  } vmm_thread{**loop, {}};
  kiln::api::PostedBackend posted(**loop, backend);
  kiln::api::Controller controller(posted, {.id = cmd.id, .version = KILN_VERSION}, cmd.config, mmds_store);
  std::unique_ptr<kiln::api::HttpServer> server;
  if (!cmd.api_sock.empty()) {
    auto s = kiln::api::HttpServer::start(cmd.api_sock, [&](const kiln::api::HttpRequest& r) {
      auto response = controller.handle(r);
      backend.count_request(response.status < 400);
      SPDLOG_DEBUG("api: {} {} -> {}", r.method, r.path, response.status);
      return response;
    }, {.max_body_bytes = cmd.http_api_max_payload_size});
    if (!s) {
      SPDLOG_ERROR("{}", s.error().message());
      return kiln::kExitVmmError;
    }
    server = std::move(*s);
    SPDLOG_DEBUG("api: serving on {}, {:.3f} ms after kiln's static initialization", cmd.api_sock,
                 std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - kiln::process_start_time())
                     .count());
  }
  vmm_thread.start();
  kiln::VmExitStatus status;
  std::optional<kiln::Error> start_failed;
  {
    // Raw before the guest can run: the first keys typed go to it as they are.
    const bool interactive = cmd.config.kiln.serial.mode == kiln::SerialConfig::Mode::kStdio;
    kiln::RawTerminal terminal(interactive ? STDIN_FILENO : -1);
    if (!cmd.start_now) {
      posted.machine_config_changed(cmd.config.machine_config);  // prepare the default VM
    } else if (auto r = controller.start_from_config(cmd.config); !r) {
      start_failed = r.error();
    }
    if (!start_failed) status = backend.run_until_end();
  }
  if (start_failed) {
    SPDLOG_ERROR("{}", start_failed->message());
    return kiln::kExitVmmError;
  }
  server.reset();  // no more requests: the VM is gone
  if (status.end == kiln::VmEnd::kVmmError) SPDLOG_ERROR("{}", status.describe());
  else SPDLOG_INFO("{}", status.describe());
  return status.exit_code();
}
