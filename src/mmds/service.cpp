#include "mmds/service.h"

#include <charconv>

#include <fmt/format.h>

namespace kiln::mmds {

using api::HttpRequest;
using api::HttpResponse;
using nlohmann::json;

namespace {

HttpResponse text(int status, std::string body) { return {status, std::move(body), "text/plain", {}}; }

const std::string* either(const HttpRequest& r, std::string_view a, std::string_view b) {
  if (const std::string* v = r.header(a)) return v;
  return r.header(b);
}

// The request's path as a JSON pointer: "/latest/meta-data/" -> "/latest/meta-data", "/" -> "".
std::string pointer_of(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  if (path == "/") return {};
  return std::string(path);
}

}  // namespace

std::string_view version_name(Version v) { return v == Version::kV2 ? "V2" : "V1"; }

HttpResponse Service::handle(const HttpRequest& r) {
  if (r.method == "PUT") return put_token(r);
  if (r.method == "GET") return get(r);
  HttpResponse out = text(405, "Not allowed HTTP method.");
  out.headers.emplace_back("Allow", "GET, PUT");
  return out;
}

HttpResponse Service::put_token(const HttpRequest& r) {
  if (r.path != "/latest/api/token") return text(404, fmt::format("Resource not found: {}.", r.path));
  if (r.header("x-forwarded-for") != nullptr)
    return text(400, "Invalid header. Reason: Unsupported header name. Key: X-Forwarded-For");
  const std::string* ttl_text = either(r, "x-metadata-token-ttl-seconds", "x-aws-ec2-metadata-token-ttl-seconds");
  if (ttl_text == nullptr)
    return text(400, "Token time to live value not found. Use `X-metadata-token-ttl-seconds` header to specify the "
                     "token's lifetime.");
  std::uint64_t ttl = 0;
  const char* end = ttl_text->data() + ttl_text->size();
  const auto [at, ec] = std::from_chars(ttl_text->data(), end, ttl);
  if (ec != std::errc{} || at != end || ttl < 1 || ttl > Tokens::kMaxTtlSeconds)
    return text(400, fmt::format("Invalid time to live value provided for token: {}. Please provide a value between "
                                 "1 and {}.",
                                 *ttl_text, Tokens::kMaxTtlSeconds));
  auto token = tokens_.issue(static_cast<std::uint32_t>(ttl));
  if (!token) return text(500, token.error().message());
  return text(200, std::move(*token));
}

HttpResponse Service::get(const HttpRequest& r) {
  if (version_ == Version::kV2) {
    const std::string* token = either(r, "x-metadata-token", "x-aws-ec2-metadata-token");
    if (token == nullptr)
      return text(401, "No MMDS token provided. Use `X-metadata-token` header to specify the session token.");
    if (!tokens_.valid(*token)) return text(401, "MMDS token not valid.");
  }
  const std::optional<json> data = store_.get();
  const HttpResponse not_found = text(404, fmt::format("Resource not found: {}.", r.path));
  if (!data) return not_found;
  const json* value = nullptr;
  try {
    const json::json_pointer ptr(pointer_of(r.path));
    if (!data->contains(ptr)) return not_found;
    value = &data->at(ptr);
  } catch (const json::exception&) {
    return not_found;  // not a JSON pointer, or an array index that is not a number
  }
  const std::string* accept = r.header("accept");
  if (accept != nullptr && accept->find("application/json") != std::string::npos)
    return {200, value->dump(-1, ' ', false, json::error_handler_t::replace), "application/json", {}};
  if (value->is_string()) return text(200, value->get<std::string>());
  if (value->is_object()) {
    std::string out;
    for (const auto& [key, v] : value->items()) {
      if (!out.empty()) out += '\n';
      out += key;
      if (v.is_object()) out += '/';
    }
    return text(200, std::move(out));
  }
  return text(501, "Cannot retrieve value. The value has an unsupported type.");
}

}  // namespace kiln::mmds
