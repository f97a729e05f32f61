#pragma once
// What the guest's HTTP requests to the metadata service get, as Firecracker's MMDS answers them:
//
//   PUT /latest/api/token with X-metadata-token-ttl-seconds (or X-aws-ec2-metadata-token-ttl-
//   seconds): 1..21600 -> 200, a session token in plain text. With X-Forwarded-For: 400.
//   GET /a/b/c: the store's value at that JSON pointer. V2 wants a live token in X-metadata-token
//   (or X-aws-ec2-metadata-token), else 401; V1 answers with or without one.
//   Accept naming application/json -> the value as JSON; otherwise IMDS: an object's keys a line each
//   (an object's key with a trailing '/'), a string as it is; any other type is a 501.
//   Not in the store (or nothing PUT yet) -> 404; other methods -> 405 with Allow: GET, PUT.
//
// Errors are plain text, as Firecracker's. Not thread-safe: the metadata service's HTTP server
// calls it from its one thread (the store it reads is thread-safe).
#include <string_view>

#include "api/http.h"
#include "mmds/store.h"
#include "mmds/tokens.h"

namespace kiln::mmds {

enum class Version { kV1, kV2 };
std::string_view version_name(Version v);

class Service {
 public:
  Service(const DataStore& store, Version version, Tokens::Now now = Tokens::Clock::now)
      : store_(store), version_(version), tokens_(std::move(now)) {}

  api::HttpResponse handle(const api::HttpRequest& request);

 private:
  api::HttpResponse put_token(const api::HttpRequest& request);
  api::HttpResponse get(const api::HttpRequest& request);

  const DataStore& store_;
  Version version_;
  Tokens tokens_;
};

}  // namespace kiln::mmds
