#pragma once
// One HTTP request and its answer, as the API sees them (the server does the wire format).
#include <string>
#include <string_view>

namespace kiln::api {

struct HttpRequest {
  std::string method;  // "GET", "PUT", "PATCH", ...
  std::string path;    // "/machine-config" (no query string)
  std::string body;
};

struct HttpResponse {
  int status = 204;
  std::string body;  // JSON, or empty for 204
};

// An answer as Firecracker gives its faults: `status` with {"fault_message": message}. The message
// may quote what a client sent; bytes that are not UTF-8 are replaced, never a reason to throw.
HttpResponse fault(int status, std::string_view message);

// Firecracker's limit on a request's body.
inline constexpr std::size_t kMaxBodyBytes = 50 * 1024;

}  // namespace kiln::api
