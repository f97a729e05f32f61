#include <gtest/gtest.h>

#include "mmds/service.h"
#include "mmds/store.h"
#include "mmds/tokens.h"

namespace kiln::mmds {
namespace {

using api::HttpRequest;
using api::HttpResponse;
using nlohmann::json;

const json kData = json::parse(R"({"latest": {"meta-data": {"ami-id": "ami-87654321", "reservation-id": "r-79054aef",
                                   "network": {"mac": "02:29:96:8f:6a:2d"}, "count": 3, "list": ["a"]}}})");

TEST(MmdsStore, PutReplacesAndPatchMerges) {
  DataStore store;
  EXPECT_FALSE(store.get().has_value());
  EXPECT_FALSE(store.patch(json{{"a", 1}}));  // nothing PUT yet
  ASSERT_TRUE(store.put(json{{"a", 1}, {"b", {{"c", 2}}}}));
  ASSERT_TRUE(store.patch(json::parse(R"({"b": {"c": null, "d": 3}, "e": "x"})")));
  EXPECT_EQ(*store.get(), json::parse(R"({"a": 1, "b": {"d": 3}, "e": "x"})"));
  ASSERT_TRUE(store.put(json{{"z", true}}));
  EXPECT_EQ(*store.get(), (json{{"z", true}}));
}

TEST(MmdsStore, AWriteOverTheLimitIsRefusedWholeAndChangesNothing) {
  DataStore store(64);
  ASSERT_TRUE(store.put(json{{"k", "small"}}));
  const auto big = store.put(json{{"k", std::string(100, 'x')}});
  ASSERT_FALSE(big);
  EXPECT_NE(big.error().message().find("over its limit of 64"), std::string::npos) << big.error().message();
  EXPECT_EQ(*store.get(), (json{{"k", "small"}}));
  EXPECT_FALSE(store.patch(json{{"more", std::string(60, 'y')}}));
  EXPECT_EQ(*store.get(), (json{{"k", "small"}}));
  // Exactly at the limit is allowed: {"k":"..."} is 8 bytes plus the string.
  EXPECT_TRUE(store.put(json{{"k", std::string(56, 'z')}}));
  EXPECT_FALSE(store.put(json{{"k", std::string(57, 'z')}}));
}

struct FakeClock {
  Tokens::Clock::time_point t{};
  Tokens::Now now() {
    return [this] { return t; };
  }
};

TEST(MmdsTokens, LiveUntilTheirTtlAndBounded) {
  FakeClock clock;
  Tokens tokens(clock.now());
  auto a = tokens.issue(10);
  auto b = tokens.issue(100);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->size(), 64u);
  EXPECT_NE(*a, *b);
  EXPECT_TRUE(tokens.valid(*a));
  EXPECT_FALSE(tokens.valid("nope"));
  clock.t += std::chrono::seconds(10);
  EXPECT_FALSE(tokens.valid(*a));  // expired at exactly its ttl
  EXPECT_TRUE(tokens.valid(*b));
  // A flood of requests keeps at most kMaxTokens; the newest stay valid.
  std::string last;
  for (std::size_t i = 0; i < Tokens::kMaxTokens + 50; ++i) last = tokens.issue(1000).value();
  EXPECT_LE(tokens.size(), Tokens::kMaxTokens);
  EXPECT_TRUE(tokens.valid(last));
}

HttpRequest req(std::string method, std::string path, std::vector<std::pair<std::string, std::string>> headers = {}) {
  return HttpRequest{std::move(method), std::move(path), "", std::move(headers)};
}

class MmdsServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(store.put(kData)); }
  std::string token(Service& s, std::uint32_t ttl = 60) {
    const HttpResponse r = s.handle(req("PUT", "/latest/api/token", {{"x-metadata-token-ttl-seconds", std::to_string(ttl)}}));
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.content_type, "text/plain");
    return r.body;
  }
  DataStore store;
  FakeClock clock;
};

TEST_F(MmdsServiceTest, ImdsFormatListsKeysAndGivesStrings) {
  Service s(store, Version::kV1, clock.now());
  HttpResponse r = s.handle(req("GET", "/latest/meta-data"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain");
  EXPECT_EQ(r.body, "ami-id\ncount\nlist\nnetwork/\nreservation-id");
  EXPECT_EQ(s.handle(req("GET", "/latest/meta-data/")).body, r.body);  // a trailing slash is the same
  EXPECT_EQ(s.handle(req("GET", "/")).body, "latest/");
  r = s.handle(req("GET", "/latest/meta-data/ami-id"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ami-87654321");  // as it is, not quoted
  r = s.handle(req("GET", "/latest/meta-data/count"));
  EXPECT_EQ(r.status, 501) << r.body;
  EXPECT_EQ(s.handle(req("GET", "/latest/meta-data/list")).status, 501);
}

TEST_F(MmdsServiceTest, JsonFormatOnRequest) {
  Service s(store, Version::kV1, clock.now());
  HttpResponse r = s.handle(req("GET", "/latest/meta-data/network", {{"accept", "application/json"}}));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(json::parse(r.body), json({{"mac", "02:29:96:8f:6a:2d"}}));
  r = s.handle(req("GET", "/latest/meta-data/ami-id", {{"accept", "application/json"}}));
  EXPECT_EQ(r.body, "\"ami-87654321\"");
  r = s.handle(req("GET", "/latest/meta-data/count", {{"accept", "application/json"}}));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "3");
  r = s.handle(req("GET", "/latest/meta-data/list/0", {{"accept", "application/json"}}));
  EXPECT_EQ(r.body, "\"a\"");
}

TEST_F(MmdsServiceTest, MissingResourcesAndOddPathsAre404) {
  Service s(store, Version::kV1, clock.now());
  for (const char* p : {"/nope", "/latest/meta-data/ami-id/deeper", "/latest/meta-data/list/x", "/latest/meta-data/list/7",
                        "/latest/~2", "/latest/meta-data/list/-"}) {
    const HttpResponse r = s.handle(req("GET", p));
    EXPECT_EQ(r.status, 404) << p << ": " << r.body;
  }
  DataStore empty;
  Service before(empty, Version::kV1, clock.now());
  EXPECT_EQ(before.handle(req("GET", "/")).status, 404);  // nothing PUT yet
}

TEST_F(MmdsServiceTest, V2WantsALiveToken) {
  Service s(store, Version::kV2, clock.now());
  HttpResponse r = s.handle(req("GET", "/latest/meta-data/ami-id"));
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("X-metadata-token"), std::string::npos);
  EXPECT_EQ(s.handle(req("GET", "/latest/meta-data/ami-id", {{"x-metadata-token", "forged"}})).status, 401);
  const std::string t = token(s, 5);
  r = s.handle(req("GET", "/latest/meta-data/ami-id", {{"x-metadata-token", t}}));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ami-87654321");
  EXPECT_EQ(s.handle(req("GET", "/latest/meta-data/ami-id", {{"x-aws-ec2-metadata-token", t}})).status, 200);
  clock.t += std::chrono::seconds(6);
  EXPECT_EQ(s.handle(req("GET", "/latest/meta-data/ami-id", {{"x-metadata-token", t}})).status, 401);
}

TEST_F(MmdsServiceTest, V1AnswersWithOrWithoutAToken) {
  Service s(store, Version::kV1, clock.now());
  EXPECT_EQ(s.handle(req("GET", "/latest/meta-data/ami-id", {{"x-metadata-token", "forged"}})).status, 200);
  const std::string t = token(s);
  EXPECT_EQ(s.handle(req("GET", "/latest/meta-data/ami-id", {{"x-metadata-token", t}})).status, 200);
}

TEST_F(MmdsServiceTest, TokenRequestsAreChecked) {
  Service s(store, Version::kV2, clock.now());
  EXPECT_EQ(s.handle(req("PUT", "/latest/api/token")).status, 400);  // no ttl
  for (const char* ttl : {"0", "21601", "-1", "ten", "", "1e3"})
    EXPECT_EQ(s.handle(req("PUT", "/latest/api/token", {{"x-metadata-token-ttl-seconds", ttl}})).status, 400) << ttl;
  EXPECT_EQ(s.handle(req("PUT", "/latest/api/token", {{"x-aws-ec2-metadata-token-ttl-seconds", "21600"}})).status, 200);
  EXPECT_EQ(s.handle(req("PUT", "/latest/api/token",
                         {{"x-metadata-token-ttl-seconds", "60"}, {"x-forwarded-for", "10.0.0.1"}}))
                .status,
            400);
  EXPECT_EQ(s.handle(req("PUT", "/latest/meta-data", {{"x-metadata-token-ttl-seconds", "60"}})).status, 404);
}

TEST_F(MmdsServiceTest, OtherMethodsAre405WithAllow) {
  Service s(store, Version::kV2, clock.now());
  for (const char* m : {"POST", "PATCH", "DELETE", "HEAD"}) {
    const HttpResponse r = s.handle(req(m, "/latest"));
    EXPECT_EQ(r.status, 405) << m;
    ASSERT_EQ(r.headers.size(), 1u);
    EXPECT_EQ(r.headers[0], (std::pair<std::string, std::string>{"Allow", "GET, PUT"}));
  }
}

}  // namespace
}  // namespace kiln::mmds
