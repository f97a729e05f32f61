#include "api/http_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstring>
#include <limits>
#include <optional>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "base/log.h"
#include "base/unique_fd.h"
#include "base/unix_listener.h"

namespace kiln::api {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Local = net::local::stream_protocol;
using Stream = beast::basic_stream<Local>;
using beast::error_code;

namespace {

// Connections past this many are closed as soon as they are accepted.
constexpr std::size_t kMaxConnections = 64;
constexpr std::uint32_t kMaxHeaderBytes = 8 * 1024;

HttpResponse too_large(std::optional<std::uint64_t> declared, std::size_t limit) {
  if (declared)
    return fault(400, fmt::format("Request payload with size {} is larger than the limit of {} allowed by server. "
                                  "Send a smaller body (or start kiln with a larger --http-api-max-payload-size).",
                                  *declared, limit));
  return fault(400, fmt::format("Request payload is larger than the limit of {} allowed by server. Send a smaller "
                                "body (or start kiln with a larger --http-api-max-payload-size).",
                                limit));
}

bool is_http_error(const error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_method).category();
}

}  // namespace

struct HttpServer::Impl {
  Impl(std::string p, Handler h, Options o) : path(std::move(p)), handler(std::move(h)), options(o) {}
  void accept();

  std::string path;
  Handler handler;
  Options options;
  std::size_t connections = 0;  // touched on the server's thread only; outlives the io_context
  net::io_context io{1};
  Local::acceptor acceptor{io};
  net::steady_timer accept_retry{io};
  std::thread thread;
};

namespace {

// One client connection: requests are read and answered in turn (HTTP/1.1 keep-alive), each step
// with a deadline. The session lives as long as an operation of its own is pending.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(HttpServer::Impl& server, Local::socket socket) : server_(server), stream_(std::move(socket)) {
    ++server_.connections;
  }
  ~Session() { --server_.connections; }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void read_header() {
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    // The body's limit is set once the header is in, so that a declared length over it is answered
    // with that length (the parser would stop at the Content-Length field and keep no number).
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    stream_.expires_after(server_.options.idle_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](error_code ec, std::size_t) { self->on_header(ec); });
  }

 private:
  void on_header(const error_code& ec) {
    if (ec) return on_read_error(ec);
    const std::size_t limit = server_.options.max_body_bytes;
    if (auto n = parser_->content_length(); n && *n > limit) return answer(too_large(*n, limit), true);
    parser_->body_limit(limit);  // for a chunked body, whose length comes as it does
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      continue_.emplace(http::status::continue_, parser_->get().version());
      stream_.expires_after(server_.options.idle_timeout);
      http::async_write(stream_, *continue_, [self = shared_from_this()](error_code wec, std::size_t) {
        if (wec) return self->close();
        self->read_body();
      });
      return;
    }
    read_body();
  }

  void read_body() {
    stream_.expires_after(server_.options.idle_timeout);
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](error_code ec, std::size_t) {
      if (ec) return self->on_read_error(ec);
      self->on_request();
    });
  }

  void on_read_error(const error_code& ec) {
    if (ec == http::error::body_limit) return answer(too_large(std::nullopt, server_.options.max_body_bytes), true);
    // The client went away (between requests or in the middle of one), or its time ran out (the
    // stream is closed already), or the server is stopping: nobody to answer.
    if (ec == http::error::end_of_stream || ec == http::error::partial_message || !is_http_error(ec)) {
      if (ec != http::error::end_of_stream && ec != net::error::operation_aborted)
        SPDLOG_DEBUG("api server: connection closed: {}", ec.message());
      return close();
    }
    answer(fault(400, fmt::format("Invalid HTTP request: {}.", ec.message())), true);
  }

  void on_request() {
    auto& req = parser_->get();
    std::string_view target = req.target();
    target = target.substr(0, target.find('?'));
    HttpResponse response;
    try {
      HttpRequest request{std::string(req.method_string()), std::string(target), std::move(req.body())};
      for (const auto& field : req) {
        std::string name(field.name_string());
        for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        request.headers.emplace_back(std::move(name), std::string(field.value()));
      }
      response = server_.handler(request);
    } catch (const std::exception& e) {
      // Nothing in the handler should throw; if it does, the client hears of it and kiln goes on.
      response = fault(500, fmt::format("internal error: {}", e.what()));
    }
    answer(std::move(response), !req.keep_alive());
  }

  void answer(HttpResponse r, bool close_after) {
    const unsigned version = parser_ && parser_->is_header_done() ? parser_->get().version() : 11;
    response_.emplace(static_cast<http::status>(r.status), version);
    if (!r.body.empty()) response_->set(http::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) response_->set(name, value);
    response_->body() = std::move(r.body);
    response_->keep_alive(!close_after);
    response_->prepare_payload();
    stream_.expires_after(server_.options.idle_timeout);
    http::async_write(stream_, *response_, [self = shared_from_this(), close_after](error_code ec, std::size_t) {
      if (ec || close_after) return self->close();
      self->read_header();
    });
  }

  void close() {
    error_code ignored;
    stream_.socket().shutdown(Local::socket::shutdown_both, ignored);
    stream_.close();
  }

  HttpServer::Impl& server_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  std::optional<http::response<http::string_body>> response_;
};

}  // namespace

void HttpServer::Impl::accept() {
  acceptor.async_accept([this](error_code ec, Local::socket socket) {
    if (ec == net::error::operation_aborted) return;
    if (ec) {
      // Out of file descriptors, say: try again shortly rather than spin.
      SPDLOG_DEBUG("api server: accept: {}", ec.message());
      accept_retry.expires_after(std::chrono::milliseconds(100));
      accept_retry.async_wait([this](error_code wec) {
        if (!wec) accept();
      });
      return;
    }
    if (connections >= kMaxConnections) {
      SPDLOG_DEBUG("api server: {} connections open; one more closed", connections);
    } else {
      std::make_shared<Session>(*this, std::move(socket))->read_header();
    }
    accept();
  });
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<HttpServer>> HttpServer::start(const std::string& path, Handler handler, Options options) {
  KILN_ASSIGN(UniqueFd fd, listen_unix(path, options.what));
  auto impl = std::make_unique<Impl>(path, std::move(handler), options);
  error_code ec;
  impl->acceptor.assign(Local(), fd.get(), ec);
  if (ec) {
    ::unlink(path.c_str());
    return plain_error("{} '{}': the HTTP server did not start: {}", options.what, path, ec.message());
  }
  (void)fd.release();  // the acceptor owns it now
  impl->accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::~HttpServer() {
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  ::unlink(impl_->path.c_str());
  // impl_ goes now: the acceptor, then the io_context with the sessions its pending handlers held.
}

}  // namespace kiln::api
