#include "api/http_server.h"

#include <microhttpd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstring>

#include <nlohmann/json.hpp>

#include "base/log.h"
#include "base/unique_fd.h"

namespace kiln::api {

namespace {

// Idle connections are closed after this long (a client that sent half a request and stopped).
constexpr unsigned kConnectionTimeoutSeconds = 30;
constexpr unsigned kMaxConnections = 64;

// One request as it arrives: its body, or the reason it was refused.
struct PendingRequest {
  std::string body;
  bool too_large = false;
  std::size_t received = 0;
};

MHD_Result send(MHD_Connection* connection, const HttpResponse& r) {
  MHD_Response* response =
      MHD_create_response_from_buffer(r.body.size(), const_cast<char*>(r.body.data()), MHD_RESPMEM_MUST_COPY);
  if (response == nullptr) return MHD_NO;
  if (!r.body.empty()) MHD_add_response_header(response, "Content-Type", "application/json");
  const MHD_Result q = MHD_queue_response(connection, static_cast<unsigned>(r.status), response);
  MHD_destroy_response(response);
  return q;
}

HttpResponse too_large(std::size_t size) {
  return {400, nlohmann::json{{"fault_message", fmt::format("Request payload with size {} is larger than the limit of "
                                                            "{} allowed by server. Send a smaller body.",
                                                            size, kMaxBodyBytes)}}
                   .dump()};
}

MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url, const char* method,
                      const char* /*version*/, const char* upload_data, size_t* upload_data_size, void** con_cls) {
  auto* server = static_cast<HttpServer*>(cls);
  auto* pending = static_cast<PendingRequest*>(*con_cls);
  if (pending == nullptr) {
    pending = new PendingRequest;
    *con_cls = pending;
    if (const char* cl = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
      std::size_t n = 0;
      const char* end = cl + std::strlen(cl);
      auto [p, ec] = std::from_chars(cl, end, n);
      if (ec != std::errc() || p != end) n = SIZE_MAX;
      // Refused before a byte of it is read; MHD closes the connection after the answer.
      if (n > kMaxBodyBytes) return send(connection, too_large(n));
    }
    return MHD_YES;
  }
  if (*upload_data_size > 0) {
    // A chunked body declares no length: what is over the limit is read and dropped (memory stays
    // bounded), and the answer comes at its end, since MHD cannot answer in the middle of a chunk.
    pending->received += *upload_data_size;
    if (!pending->too_large && pending->received > kMaxBodyBytes) {
      pending->too_large = true;
      pending->body.clear();
      pending->body.shrink_to_fit();
    }
    if (!pending->too_large) pending->body.append(upload_data, *upload_data_size);
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (pending->too_large) return send(connection, too_large(pending->received));
  HttpResponse response;
  try {
    response = server->handler()({method, url, std::move(pending->body)});
  } catch (const std::exception& e) {
    // Nothing in the handler should throw; if it does, the client hears of it and kiln goes on.
    response = {500, nlohmann::json{{"fault_message", fmt::format("internal error: {}", e.what())}}.dump(
                         -1, ' ', false, nlohmann::json::error_handler_t::replace)};
  }
  return send(connection, response);
}

void on_completed(void* /*cls*/, MHD_Connection* /*connection*/, void** con_cls, MHD_RequestTerminationCode /*why*/) {
  delete static_cast<PendingRequest*>(*con_cls);
  *con_cls = nullptr;
}

void on_mhd_log(void* /*cls*/, const char* fmt, va_list ap) {
  char line[512];
  std::vsnprintf(line, sizeof(line), fmt, ap);
  std::string_view s(line);
  while (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  SPDLOG_DEBUG("api server: {}", s);
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::start(const std::string& path, Handler handler) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path))
    return plain_error("--api-sock '{}': a socket path must have 1 to {} characters", path, sizeof(addr.sun_path) - 1);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  struct stat st{};
  if (::lstat(path.c_str(), &st) == 0)
    return plain_error("--api-sock '{}': the path already exists; remove it, or choose another path", path);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return errno_error("--api-sock: socket");
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0)
    return errno_error("--api-sock '{}': bind (check that the directory exists and is writable)", path);
  if (::listen(fd.get(), 64) != 0) {
    auto e = errno_error("--api-sock '{}': listen", path);
    ::unlink(path.c_str());
    return e;
  }
  std::unique_ptr<HttpServer> server(new HttpServer(path, std::move(handler)));
  const int listen_fd = fd.release();  // MHD owns it from here and closes it when it stops
  server->daemon_ = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, nullptr, nullptr, &on_request,
      server.get(), MHD_OPTION_LISTEN_SOCKET, listen_fd, MHD_OPTION_NOTIFY_COMPLETED, &on_completed, nullptr,
      MHD_OPTION_CONNECTION_TIMEOUT, kConnectionTimeoutSeconds, MHD_OPTION_CONNECTION_LIMIT, kMaxConnections,
      MHD_OPTION_EXTERNAL_LOGGER, &on_mhd_log, nullptr, MHD_OPTION_END);
  if (server->daemon_ == nullptr) {
    ::close(listen_fd);
    ::unlink(path.c_str());
    return plain_error("--api-sock '{}': the HTTP server (libmicrohttpd) did not start", path);
  }
  return server;
}

HttpServer::~HttpServer() {
  if (daemon_ != nullptr) MHD_stop_daemon(daemon_);
  ::unlink(path_.c_str());
}

}  // namespace kiln::api
