#pragma once
// HTTP/1.1 on a Unix socket, served by Boost.Beast over Boost.Asio on a thread of its own, with
// non-blocking sockets, so a slow, stalled or vanished client never holds up the VMM, the vCPUs or
// other clients. Bodies over Options::max_body_bytes are refused; with a declared length, before any
// of it is read.
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "api/http.h"
#include "base/error.h"

namespace kiln::api {

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  struct Options {
    // A connection with a request (its header, or its body) unfinished for this long, or idle
    // between requests for this long, is closed.
    std::chrono::milliseconds idle_timeout{std::chrono::seconds(30)};
    // The largest request body taken (Firecracker's --http-api-max-payload-size, 51200 by default).
    std::size_t max_body_bytes = kMaxBodyBytes;
    // What errors in start() name the socket by: the flag that gave it.
    std::string what = "--api-sock";
  };

  // Binds and listens on `path` (which must not exist), then serves until destroyed. The handler
  // runs on the server's thread, one request at a time.
  static Result<std::unique_ptr<HttpServer>> start(const std::string& path, Handler handler, Options options);
  static Result<std::unique_ptr<HttpServer>> start(const std::string& path, Handler handler) {
    return start(path, std::move(handler), Options{});
  }
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::api
