#pragma once
// One HTTP request and its answer, as the API sees them (the server does the wire format).
#include <string>

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

// Firecracker's limit on a request's body.
inline constexpr std::size_t kMaxBodyBytes = 50 * 1024;

}  // namespace kiln::api
