// The metadata service's answers (mmds::Service) to what a guest sends it: the input is a series
// of raw HTTP requests, read with Beast's parser as kiln's HTTP server reads them, each answered
// by a V1 and a V2 service over a store with nested objects, strings, numbers and arrays. A token
// a PUT returns is used by the next GET that asks for "TOKEN" in a header value. Every answer must
// be one of the statuses Firecracker's MMDS gives, with a body a client can read.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "mmds/service.h"

namespace {

namespace http = boost::beast::http;

const kiln::mmds::DataStore& store() {
  static kiln::mmds::DataStore s;
  static const bool filled = s.put(nlohmann::json::parse(
      R"({"latest": {"meta-data": {"ami-id": "ami-1", "n": 3, "list": ["a", {"b": 1}],
          "net": {"mac": "02:00:00:00:00:01", "~odd/key": "x"}}}, "": "empty key"})")).has_value();
  if (!filled) std::abort();
  return s;
}

bool known_status(int s) { return s == 200 || s == 400 || s == 401 || s == 404 || s == 405 || s == 501; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kiln::mmds::Service v1(store(), kiln::mmds::Version::kV1), v2(store(), kiln::mmds::Version::kV2);
  std::string token;
  boost::beast::flat_buffer buffer;
  buffer.commit(boost::asio::buffer_copy(buffer.prepare(size), boost::asio::buffer(data, size)));
  for (int n = 0; n < 16 && buffer.size() > 0; ++n) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(8 * 1024);
    parser.body_limit(4 * 1024);
    parser.eager(true);
    boost::beast::error_code ec;
    const std::size_t used = parser.put(buffer.data(), ec);
    buffer.consume(used);
    if (!parser.is_done()) {
      if (!ec || ec == http::error::need_more) parser.put_eof(ec);
      if (!parser.is_done()) break;  // not a request: the server answers 400 and closes
    }
    auto& req = parser.get();
    std::string_view target = req.target();
    kiln::api::HttpRequest r{std::string(req.method_string()), std::string(target.substr(0, target.find('?'))),
                             req.body()};
    for (const auto& field : req) {
      std::string name(field.name_string());
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      std::string value(field.value());
      if (value == "TOKEN") value = token;
      r.headers.emplace_back(std::move(name), std::move(value));
    }
    for (kiln::mmds::Service* s : {&v1, &v2}) {
      const kiln::api::HttpResponse a = s->handle(r);
      if (!known_status(a.status)) std::abort();
      if (a.content_type != "text/plain" && a.content_type != "application/json") std::abort();
      if (a.status == 200 && r.method == "PUT") token = a.body;
      if (a.status == 405 && (a.headers.empty() || a.headers[0].first != "Allow")) std::abort();
    }
  }
  return 0;
}
