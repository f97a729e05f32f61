#pragma once
// A real HTTP client for the API tests: curl --unix-socket, run as its own process.
#include <optional>
#include <string>
#include <vector>

namespace kiln::test {

struct CurlResult {
  int status = 0;  // HTTP status, 0 when curl got none
  std::string body;
};

// METHOD http://localhost/PATH over the socket, with `body` as the JSON body if given.
CurlResult curl(const std::string& sock, const std::string& method, const std::string& path,
                const std::optional<std::string>& body = std::nullopt, std::vector<std::string> extra = {});

// Connects to the socket and sends `bytes`, keeping the connection open; returns the fd.
int raw_connect(const std::string& sock, const std::string& bytes);

// Waits until the socket accepts connections; false at the deadline.
bool wait_for_socket(const std::string& sock, int timeout_ms);

}  // namespace kiln::test
