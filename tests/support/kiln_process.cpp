#include "support/kiln_process.h"

#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <cstring>
#include <stdexcept>

namespace kiln::test {

std::vector<std::string> kiln_run(std::vector<std::string> args) {
  args.insert(args.begin(), {KILN_BINARY, "run"});
  return args;
}

std::uint64_t own_rss_kib(pid_t pid, std::uint64_t guest_ram_mib) {
  std::ifstream smaps("/proc/" + std::to_string(pid) + "/smaps");
  std::uint64_t total = 0, size = 0, value = 0;
  std::string line, key;
  while (std::getline(smaps, line)) {
    std::istringstream in(line);
    if (!(in >> key >> value)) continue;
    if (key == "Size:") size = value;
    // Each mapping's Size: comes before its Rss:. The guest's RAM is one mapping of its size and
    // a few pages more.
    const std::uint64_t ram = guest_ram_mib * 1024;
    if (key == "Rss:" && !(size >= ram && size < ram + 4096)) total += value;
  }
  return total;
}

KilnProcess::KilnProcess(std::vector<std::string> args, Console console) {
  int out_pipe[2], err_pipe[2], in_pipe[2];
  int master = -1, slave = -1;
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  pty_ = console == Console::kPty;
  if (console == Console::kPty) {
    if (::openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) throw std::runtime_error("openpty");
    ::tcgetattr(master, &pty_modes_);
  } else {
    if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(in_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  pid_ = ::fork();
  if (pid_ == 0) {
    ::setsid();
    if (console == Console::kPty) {
      ::ioctl(slave, TIOCSCTTY, 0);
      ::dup2(slave, 0);
      ::dup2(slave, 1);
    } else {
      ::dup2(in_pipe[0], 0);
      ::dup2(out_pipe[1], 1);
    }
    ::dup2(err_pipe[1], 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(err_pipe[1]);
  err_fd_ = err_pipe[0];
  if (console == Console::kPty) {
    ::close(slave);
    in_fd_ = ::dup(master);
    out_fd_ = master;
  } else {
    ::close(out_pipe[1]);
    ::close(in_pipe[0]);
    out_fd_ = out_pipe[0];
    in_fd_ = in_pipe[1];
  }
  out_thread_ = std::thread([this] { reader(out_fd_, &KilnProcess::out_); });
  err_thread_ = std::thread([this] { reader(err_fd_, &KilnProcess::err_); });
  reaper_thread_ = std::thread([this] { reaper(); });
}

KilnProcess::~KilnProcess() {
  if (!exited() && pid_ > 0) ::kill(pid_, SIGKILL);
  if (reaper_thread_.joinable()) reaper_thread_.join();
  if (in_fd_ >= 0) ::close(in_fd_);
  // A pty master reports EIO once the child is gone, a pipe EOF: both end the readers.
  if (out_thread_.joinable()) out_thread_.join();
  if (err_thread_.joinable()) err_thread_.join();
  ::close(out_fd_);
  ::close(err_fd_);
}

void KilnProcess::reader(int fd, std::string KilnProcess::*buf) {
  char chunk[4096];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::lock_guard lock(mu_);
    (this->*buf).append(chunk, static_cast<std::size_t>(n));
    if (buf == &KilnProcess::out_) last_output_ = std::chrono::steady_clock::now();
    cv_.notify_all();
  }
  std::lock_guard lock(mu_);
  ++readers_done_;
  cv_.notify_all();
}

void KilnProcess::reaper() {
  int st = 0;
  rusage ru{};
  while (::wait4(pid_, &st, 0, &ru) < 0 && errno == EINTR) {
  }
  std::lock_guard lock(mu_);
  status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  peak_rss_kib_ = static_cast<std::uint64_t>(ru.ru_maxrss);
  exited_at_ = std::chrono::steady_clock::now();
  cv_.notify_all();
}

namespace {
// After kiln exits, how long its output may still take to arrive before a wait gives up on the
// readers (a process kiln started could hold the pipe open).
constexpr auto kDrainAfterExit = std::chrono::seconds(2);
}  // namespace

bool KilnProcess::finished_locked() const {
  return status_ && (readers_done_ == 2 || std::chrono::steady_clock::now() - exited_at_ >= kDrainAfterExit);
}

std::uint64_t KilnProcess::peak_rss_kib() {
  std::lock_guard lock(mu_);
  return peak_rss_kib_;
}

bool KilnProcess::exited() {
  std::lock_guard lock(mu_);
  return status_.has_value();
}

bool KilnProcess::wait_in(std::string KilnProcess::*buf, const std::string& needle,
                          std::chrono::seconds timeout) {
  std::unique_lock lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if ((this->*buf).find(needle) != std::string::npos) return true;
    if (finished_locked()) return false;  // kiln is gone: the marker cannot come any more
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    // Woken by output, a reader's end or the exit; the slice bounds the wait for the drain limit.
    cv_.wait_for(lock, std::min<std::chrono::steady_clock::duration>(deadline - now, std::chrono::milliseconds(200)));
  }
}

bool KilnProcess::wait_for_quiet_output(std::chrono::milliseconds quiet, std::chrono::seconds timeout) {
  std::unique_lock lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_output_ >= quiet || finished_locked()) return true;
    if (now >= deadline) return false;
    cv_.wait_for(lock, std::min<std::chrono::steady_clock::duration>(deadline - now, last_output_ + quiet - now));
  }
}

bool KilnProcess::wait_for_output(const std::string& needle, std::chrono::seconds timeout) {
  return wait_in(&KilnProcess::out_, needle, timeout);
}

bool KilnProcess::wait_for_stderr(const std::string& needle, std::chrono::seconds timeout) {
  return wait_in(&KilnProcess::err_, needle, timeout);
}

void KilnProcess::send(const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(in_fd_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

std::optional<int> KilnProcess::wait_exit(std::chrono::seconds timeout) {
  std::unique_lock lock(mu_);
  // Then let the readers drain what the process wrote last.
  if (!cv_.wait_for(lock, timeout, [&] { return status_.has_value(); })) return std::nullopt;
  cv_.wait_for(lock, kDrainAfterExit, [&] { return readers_done_ == 2; });
  return status_;
}

void KilnProcess::signal(int sig) {
  // The reaper sets status_ only after waitpid, so until then the pid is still kiln's.
  std::lock_guard lock(mu_);
  if (!status_ && pid_ > 0) ::kill(pid_, sig);
}

std::string KilnProcess::output() {
  std::lock_guard lock(mu_);
  return out_;
}

std::string KilnProcess::errors() {
  std::lock_guard lock(mu_);
  return err_;
}

}  // namespace kiln::test
