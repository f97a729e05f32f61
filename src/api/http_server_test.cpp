#include "api/http_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <gtest/gtest.h>

#include "base/unique_fd.h"

namespace kiln::api {
namespace {

// A raw client: what it sends is exactly what the test wrote.
class Client {
 public:
  explicit Client(const std::string& path) : fd_(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    connected_ = ::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  [[nodiscard]] bool connected() const { return connected_; }
  void send(std::string_view bytes) {
    ASSERT_EQ(::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
  }
  // Reads until `needle` has arrived `count` times, the server closes, or 5 s pass.
  std::string read_until(std::string_view needle, int count = 1) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (occurrences(needle) < count && !closed_ && std::chrono::steady_clock::now() < deadline) wait_and_read(50);
    return got_;
  }
  // True if the server closes the connection within 5 s (or `within`).
  bool closed_by_server() { return closed_by_server_within(std::chrono::seconds(5)); }
  bool closed_by_server_within(std::chrono::milliseconds within) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (!closed_ && std::chrono::steady_clock::now() < deadline) wait_and_read(10);
    return closed_;
  }
  // Whatever arrives within `ms`.
  std::string read_for(int ms) {
    wait_and_read(ms);
    return got_;
  }

 private:
  [[nodiscard]] int occurrences(std::string_view needle) const {
    int n = 0;
    for (auto p = got_.find(needle); p != std::string::npos; p = got_.find(needle, p + 1)) ++n;
    return n;
  }
  void wait_and_read(int ms) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, ms) <= 0) return;
    char buf[4096];
    const ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
    if (n <= 0) closed_ = true;
    else got_.append(buf, static_cast<std::size_t>(n));
  }
  UniqueFd fd_;
  bool connected_ = false;
  bool closed_ = false;
  std::string got_;
};

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override { start({}); }
  void start(HttpServer::Options options) {
    server_.reset();
    path_ = (std::filesystem::temp_directory_path() / ("kiln-http-" + std::to_string(::getpid()) + ".sock")).string();
    std::filesystem::remove(path_);
    auto s = HttpServer::start(
        path_,
        [this](const HttpRequest& r) -> HttpResponse {
          ++calls_;
          if (r.path == "/throw") throw std::runtime_error("boom");
          return {200, R"({"method":")" + r.method + R"(","path":")" + r.path + R"(","body_size":)" +
                           std::to_string(r.body.size()) + "}"};
        },
        options);
    ASSERT_TRUE(s) << s.error().message();
    server_ = std::move(*s);
  }
  std::string path_;
  std::atomic<int> calls_ = 0;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, PipelinedRequestsOnOneConnectionAreAnsweredInOrderWithoutTheQuery) {
  Client c(path_);
  ASSERT_TRUE(c.connected());
  c.send("GET /a?x=1 HTTP/1.1\r\nHost: k\r\n\r\nPUT /b HTTP/1.1\r\nHost: k\r\nContent-Length: 3\r\n\r\nabc");
  const std::string got = c.read_until("}", 2);
  const auto a = got.find(R"({"method":"GET","path":"/a","body_size":0})");
  const auto b = got.find(R"({"method":"PUT","path":"/b","body_size":3})");
  ASSERT_NE(a, std::string::npos) << got;
  ASSERT_NE(b, std::string::npos) << got;
  EXPECT_LT(a, b);
  EXPECT_NE(got.find("Content-Type: application/json"), std::string::npos);
  // Keep-alive: the connection is still there for a third request.
  c.send("GET /c HTTP/1.1\r\nHost: k\r\n\r\n");
  EXPECT_NE(c.read_until("/c").find(R"("path":"/c")"), std::string::npos);
}

TEST_F(HttpServerTest, ExpectContinueIsAnsweredBeforeTheBodyIsSent) {
  Client c(path_);
  c.send("PUT /x HTTP/1.1\r\nHost: k\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_NE(c.read_until("\r\n\r\n").find("HTTP/1.1 100 Continue"), std::string::npos);
  c.send("abcd");
  EXPECT_NE(c.read_until("}").find(R"("body_size":4)"), std::string::npos);
}

TEST_F(HttpServerTest, ADeclaredOversizeBodyIsRefusedBeforeItIsSent) {
  Client c(path_);
  c.send("PUT /x HTTP/1.1\r\nHost: k\r\nContent-Length: 51201\r\n\r\n");
  const std::string got = c.read_until("}");
  EXPECT_NE(got.find("HTTP/1.1 400"), std::string::npos) << got;
  EXPECT_NE(got.find("size 51201 is larger than the limit of 51200"), std::string::npos) << got;
  EXPECT_TRUE(c.closed_by_server());
  EXPECT_EQ(calls_, 0);
}

TEST_F(HttpServerTest, TheBodyLimitIsTheServersOption) {
  start({.max_body_bytes = 100000});
  Client c(path_);
  c.send("PUT /x HTTP/1.1\r\nHost: k\r\nContent-Length: 60000\r\n\r\n" + std::string(60000, 'a'));
  EXPECT_NE(c.read_until("}").find(R"("body_size":60000)"), std::string::npos);
  Client over(path_);
  over.send("PUT /x HTTP/1.1\r\nHost: k\r\nContent-Length: 100001\r\n\r\n");
  const std::string got = over.read_until("}");
  EXPECT_NE(got.find("size 100001 is larger than the limit of 100000"), std::string::npos) << got;
  EXPECT_NE(got.find("--http-api-max-payload-size"), std::string::npos) << got;
  EXPECT_EQ(calls_, 1);
}

TEST_F(HttpServerTest, AChunkedBodyIsRefusedOnceItPassesTheLimit) {
  Client c(path_);
  c.send("PUT /x HTTP/1.1\r\nHost: k\r\nTransfer-Encoding: chunked\r\n\r\n");
  const std::string chunk = "1000\r\n" + std::string(0x1000, 'a') + "\r\n";
  for (int i = 0; i < 12; ++i) c.send(chunk);  // 48 KiB: within the limit, so no answer yet
  EXPECT_EQ(c.read_for(100), "");
  c.send(chunk);  // 52 KiB
  const std::string got = c.read_until("}");
  EXPECT_NE(got.find("HTTP/1.1 400"), std::string::npos) << got;
  EXPECT_NE(got.find("larger than the limit of 51200"), std::string::npos) << got;
  EXPECT_TRUE(c.closed_by_server());
  EXPECT_EQ(calls_, 0);
}

TEST_F(HttpServerTest, WhatDoesNotParseGetsA400WithAFaultMessageAndIsClosed) {
  {
    Client c(path_);
    c.send("NOT HTTP AT ALL\r\n\r\n");
    const std::string got = c.read_until("}");
    EXPECT_NE(got.find("HTTP/1.1 400"), std::string::npos) << got;
    EXPECT_NE(got.find(R"({"fault_message":"Invalid HTTP request: )"), std::string::npos) << got;
    EXPECT_TRUE(c.closed_by_server());
  }
  {
    Client c(path_);
    c.send("GET / HTTP/1.1\r\nHost: k\r\nX-Big: " + std::string(9000, 'h') + "\r\n\r\n");
    const std::string got = c.read_until("}");
    EXPECT_NE(got.find("header limit"), std::string::npos) << got;
    EXPECT_TRUE(c.closed_by_server());
  }
  EXPECT_EQ(calls_, 0);
}

TEST_F(HttpServerTest, HalfARequestOrAnIdleKeepAliveIsClosedAfterTheIdleTimeout) {
  start({.idle_timeout = std::chrono::milliseconds(400)});
  Client half(path_), idle(path_), fresh(path_);
  const auto t0 = std::chrono::steady_clock::now();
  half.send("PUT /x HTTP/1.1\r\nHost: k\r\nContent-Length: 10\r\n\r\nabc");
  idle.send("GET /a HTTP/1.1\r\nHost: k\r\n\r\n");
  EXPECT_NE(idle.read_until("}").find(R"("path":"/a")"), std::string::npos);
  // Well before the timeout, all three are still open.
  EXPECT_EQ(half.read_for(100), "");
  EXPECT_FALSE(half.closed_by_server_within(std::chrono::milliseconds(50)));
  EXPECT_TRUE(half.closed_by_server()) << "half a request";
  EXPECT_TRUE(idle.closed_by_server()) << "idle after its answer";
  EXPECT_TRUE(fresh.closed_by_server()) << "connected, never sent";
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(400));
  EXPECT_EQ(calls_, 1) << "the half request never reached the handler";
  // The server goes on.
  Client next(path_);
  next.send("GET /b HTTP/1.1\r\nHost: k\r\n\r\n");
  EXPECT_NE(next.read_until("}").find(R"("path":"/b")"), std::string::npos);
}

TEST_F(HttpServerTest, AHandlerThatThrowsGivesA500AndTheServerGoesOn) {
  Client c(path_);
  c.send("GET /throw HTTP/1.1\r\nHost: k\r\n\r\n");
  const std::string got = c.read_until("}");
  EXPECT_NE(got.find("HTTP/1.1 500"), std::string::npos) << got;
  EXPECT_NE(got.find("internal error: boom"), std::string::npos) << got;
  c.send("GET /after HTTP/1.1\r\nHost: k\r\n\r\n");
  EXPECT_NE(c.read_until("/after").find(R"("path":"/after")"), std::string::npos);
}

TEST_F(HttpServerTest, PastSixtyFourConnectionsOneMoreIsClosedAndServedAgainOnceOneGoes) {
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < 64; ++i) {
    idle.push_back(std::make_unique<Client>(path_));
    ASSERT_TRUE(idle.back()->connected());
  }
  // An answered request shows the server has accepted every connection before it.
  idle.back()->send("GET /last HTTP/1.1\r\nHost: k\r\n\r\n");
  ASSERT_NE(idle.back()->read_until("}").find("/last"), std::string::npos);
  Client extra(path_);
  EXPECT_TRUE(extra.closed_by_server());
  idle.front().reset();
  // The server sees the close when it next reads that connection; give it a moment.
  std::string got;
  for (int attempt = 0; attempt < 50 && got.find("/again") == std::string::npos; ++attempt) {
    Client again(path_);
    again.send("GET /again HTTP/1.1\r\nHost: k\r\n\r\n");
    got = again.read_until("}");
  }
  EXPECT_NE(got.find(R"("path":"/again")"), std::string::npos) << got;
}

TEST_F(HttpServerTest, AnExistingPathIsRefusedAndTheSocketGoesWithTheServer) {
  auto second = HttpServer::start(path_, [](const HttpRequest&) { return HttpResponse{}; });
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message().find("already exists"), std::string::npos);
  struct stat st{};
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  server_.reset();
  EXPECT_NE(::lstat(path_.c_str(), &st), 0);
}

}  // namespace
}  // namespace kiln::api
