// The API server's HTTP side (api::HttpServer: Beast's parser and kiln's connection loop) with the
// Controller behind it, fed raw bytes by a hostile client over the real Unix socket. The input is
// sent as one connection's bytes, then the client shuts its side. The server must close the
// connection in time (no hang), and everything it sends back must parse as HTTP responses, each
// a 100, 200, 204 or a 400 with a JSON fault_message (a 500 means the handler threw).
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "accepting_backend.h"
#include "api/controller.h"
#include "api/http_server.h"
#include "base/unique_fd.h"

namespace {

namespace http = boost::beast::http;

// One server for the whole run; each input gets a fresh Controller (swapped in while no
// connection is open, so the server's thread never sees it change under a request).
struct Fixture {
  Fixture() {
    path = "/tmp/kiln-http-fuzz-" + std::to_string(::getpid()) + ".sock";
    ::unlink(path.c_str());
    auto s = kiln::api::HttpServer::start(path, [this](const kiln::api::HttpRequest& r) { return controller->handle(r); });
    if (!s) {
      std::fprintf(stderr, "%s\n", s.error().message().c_str());
      std::abort();
    }
    server = std::move(*s);
  }
  std::string path;
  kiln::fuzz::AcceptingBackend backend;
  std::unique_ptr<kiln::api::Controller> controller;
  std::unique_ptr<kiln::api::HttpServer> server;
};

// Sends `input` and reads until the server closes, both at once (neither side may block the
// other). False if the server has not closed within the deadline.
bool exchange(const std::string& path, std::string_view input, std::string& answer) {
  kiln::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) std::abort();
  bool shut = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (input.empty() && !shut) {
      ::shutdown(fd.get(), SHUT_WR);
      shut = true;
    }
    pollfd p{fd.get(), static_cast<short>(POLLIN | (shut ? 0 : POLLOUT)), 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[16384];
      const ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
      if (n == 0 || (n < 0 && errno != EAGAIN)) return true;  // closed (or reset) by the server
      if (n > 0) answer.append(buf, static_cast<std::size_t>(n));
    }
    if (!shut && (p.revents & POLLOUT)) {
      const ssize_t n = ::send(fd.get(), input.data(), input.size(), MSG_NOSIGNAL);
      if (n > 0) input.remove_prefix(static_cast<std::size_t>(n));
      else if (n < 0 && errno != EAGAIN) input = {};  // the server closed: stop sending
    }
  }
  return false;
}

void check_answers(const std::string& answer) {
  std::size_t offset = 0;
  while (offset < answer.size()) {
    http::response_parser<http::string_body> parser;
    parser.eager(true);
    boost::beast::error_code ec;
    const std::size_t used = parser.put(boost::asio::const_buffer(answer.data() + offset, answer.size() - offset), ec);
    if (ec || !parser.is_done()) {
      std::fprintf(stderr, "not an HTTP response at offset %zu: %s\n%s\n", offset, ec.message().c_str(), answer.c_str());
      std::abort();
    }
    offset += used;
    const auto& r = parser.get();
    const unsigned status = r.result_int();
    if (status == 400) {
      const auto j = nlohmann::json::parse(r.body(), nullptr, false);
      if (!j.is_object() || !j.contains("fault_message") || !j["fault_message"].is_string()) std::abort();
    } else if (status != 100 && status != 200 && status != 204) {
      std::fprintf(stderr, "status %u:\n%s\n", status, answer.c_str());
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture fixture;
  fixture.controller =
      std::make_unique<kiln::api::Controller>(fixture.backend, kiln::api::InstanceInfo{.id = "fuzz", .version = "0"});
  std::string answer;
  if (!exchange(fixture.path, std::string_view(reinterpret_cast<const char*>(data), size), answer)) {
    std::fprintf(stderr, "the server did not close the connection within 10 s\n");
    std::abort();
  }
  check_answers(answer);
  return 0;
}
