#pragma once
// One HTTP request and its answer, as kiln's HTTP services see them (the server does the wire
// format): Firecracker's API and the guest's metadata service (MMDS).
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::api {

struct HttpRequest {
  std::string method;  // "GET", "PUT", "PATCH", ...
  std::string path;    // "/machine-config" (no query string)
  std::string body;
  // The header fields in the order sent, names in lower case.
  std::vector<std::pair<std::string, std::string>> headers = {};
  // The first field named `name` (lower case), or nullptr.
  [[nodiscard]] const std::string* header(std::string_view name) const;
};

struct HttpResponse {
  int status = 204;
  std::string body;  // JSON, or empty for 204
  std::string content_type = "application/json";  // sent when there is a body
  std::vector<std::pair<std::string, std::string>> headers = {};  // more fields (Allow, ...)
};

// An answer as Firecracker gives its faults: `status` with {"fault_message": message}. The message
// may quote what a client sent; bytes that are not UTF-8 are replaced, never a reason to throw.
HttpResponse fault(int status, std::string_view message);

// Firecracker's limit on a request's body.
inline constexpr std::size_t kMaxBodyBytes = 50 * 1024;

}  // namespace kiln::api
