#pragma once
// HTTP/1.1 on a Unix socket, served by GNU libmicrohttpd on its own thread (epoll, non-blocking
// I/O), so a slow, stalled or vanished client never holds up the VMM, the vCPUs or other clients.
// Bodies over kMaxBodyBytes are refused without being read.
#include <functional>
#include <memory>
#include <string>

#include "api/http.h"
#include "base/error.h"

struct MHD_Daemon;

namespace kiln::api {

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  // Binds and listens on `path` (which must not exist), then serves until destroyed.
  static Result<std::unique_ptr<HttpServer>> start(const std::string& path, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Used by the server's callbacks.
  [[nodiscard]] const Handler& handler() const { return handler_; }

 private:
  HttpServer(std::string path, Handler handler) : path_(std::move(path)), handler_(std::move(handler)) {}
  std::string path_;
  Handler handler_;
  MHD_Daemon* daemon_ = nullptr;
};

}  // namespace kiln::api
