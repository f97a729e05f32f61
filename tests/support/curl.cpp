#include "support/curl.h"

#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

extern char** environ;

namespace kiln::test {

CurlResult curl(const std::string& sock, const std::string& method, const std::string& path,
                const std::optional<std::string>& body, std::vector<std::string> extra) {
  std::vector<std::string> args = {"curl", "-s", "-S", "--max-time", "20", "--unix-socket", sock, "-X", method,
                                   "-o", "-", "-w", "\n%{http_code}", "http://localhost" + path};
  if (body) {
    args.insert(args.end(), {"-H", "Content-Type: application/json", "--data-binary", *body});
  }
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int out[2];
  if (::pipe(out) != 0) return {};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, "curl", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(out[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof(buf))) > 0) text.append(buf, static_cast<std::size_t>(n));
  ::close(out[0]);
  if (rc != 0) return {};
  int st = 0;
  ::waitpid(pid, &st, 0);
  CurlResult r;
  const auto nl = text.rfind('\n');
  if (nl == std::string::npos) return r;
  r.status = std::atoi(text.c_str() + nl + 1);
  r.body = text.substr(0, nl);
  return r;
}

int raw_connect(const std::string& sock, const std::string& bytes) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  if (!bytes.empty()) (void)!::write(fd, bytes.data(), bytes.size());
  return fd;
}

bool wait_for_socket(const std::string& sock, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    const int fd = raw_connect(sock, "");
    if (fd >= 0) {
      ::close(fd);
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

}  // namespace kiln::test
