#include "base/unix_listener.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace kiln {

Result<UniqueFd> listen_unix(const std::string& path, std::string_view what) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path))
    return plain_error("{} '{}': a socket path must have 1 to {} characters", what, path, sizeof(addr.sun_path) - 1);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  struct stat st{};
  if (::lstat(path.c_str(), &st) == 0)
    return plain_error("{} '{}': the path already exists; remove it, or choose another path", what, path);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return errno_error("{}: socket", what);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0)
    return errno_error("{} '{}': bind (check that the directory exists and is writable)", what, path);
  if (::listen(fd.get(), 64) != 0) {
    auto e = errno_error("{} '{}': listen", what, path);
    ::unlink(path.c_str());
    return e;
  }
  return fd;
}

}  // namespace kiln
