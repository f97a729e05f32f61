// Firecracker's API on kiln's real socket, driven by curl, with the tiny guest as the VM.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "support/curl.h"
#include "support/guests.h"
#include "support/kiln_process.h"

namespace kiln::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class Api : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "kiln-api-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    sock_ = dir_ + "/api.sock";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<KilnProcess> start_kiln(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {KILN_BINARY, "--api-sock", sock_};
    args.insert(args.end(), extra.begin(), extra.end());
    auto k = std::make_unique<KilnProcess>(args);
    EXPECT_TRUE(wait_for_socket(sock_, 60000)) << k->errors();
    return k;
  }
  CurlResult call(const std::string& method, const std::string& path, const std::optional<std::string>& body = {}) {
    return curl(sock_, method, path, body);
  }
  void expect_fault(const CurlResult& r, std::string_view needle) {
    EXPECT_EQ(r.status, 400) << r.body;
    const json j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("fault_message")) << r.body;
    EXPECT_NE(j["fault_message"].get<std::string>().find(needle), std::string::npos) << r.body;
  }
  void put_tiny(const std::string& mode) {
    ASSERT_EQ(call("PUT", "/boot-source", json{{"kernel_image_path", KILN_TINY_GUEST}, {"boot_args", mode}}.dump()).status, 204);
    ASSERT_EQ(call("PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 64})").status, 204);
  }
  CurlResult instance_start() { return call("PUT", "/actions", R"({"action_type": "InstanceStart"})"); }
  // The tiny guest's counter lines so far, as numbers.
  static std::vector<unsigned long> counts(const std::string& out) {
    std::vector<unsigned long> v;
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line))
      if (line.starts_with("tiny: count ") && line.size() >= 20) v.push_back(std::stoul(line.substr(12, 8), nullptr, 16));
    return v;
  }
  static std::string read_file(const std::string& path) {
    std::ifstream f(path);
    return {std::istreambuf_iterator<char>(f), {}};
  }
  static std::string fmt_hex(std::size_t n) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "%08zx", n);
    return buf;
  }
  std::string dir_, sock_;
};

TEST_F(Api, EveryPreBootResourceAndGetVmConfigReturnsWhatWasPut) {
  if (!have_kvm()) GTEST_SKIP() << "needs /dev/kvm";
  auto k = start_kiln({"--id", "api-test"});
  auto info = json::parse(call("GET", "/").body);
  EXPECT_EQ(info["id"], "api-test");
  EXPECT_EQ(info["state"], "Not started");
  EXPECT_EQ(call("GET", "/version").status, 200);
  EXPECT_EQ(json::parse(call("GET", "/machine-config").body)["vcpu_count"], 1);
  put_tiny("counter");
  EXPECT_EQ(call("PATCH", "/machine-config", R"({"mem_size_mib": 96})").status, 204);
  const std::string log = dir_ + "/kiln.log", metrics = dir_ + "/metrics.json";
  EXPECT_EQ(call("PUT", "/logger", json{{"log_path", log}, {"level", "Debug"}, {"show_level", true},
                                        {"show_log_origin", true}}.dump()).status, 204);
  EXPECT_EQ(call("PUT", "/metrics", json{{"metrics_path", metrics}}.dump()).status, 204);
  ASSERT_EQ(instance_start().status, 204);
  ASSERT_TRUE(k->wait_for_output("tiny: count 00000003", 60s)) << k->output() << k->errors();
  EXPECT_EQ(json::parse(call("GET", "/").body)["state"], "Running");

  auto vm = json::parse(call("GET", "/vm/config").body);
  EXPECT_EQ(vm["boot-source"]["kernel_image_path"], KILN_TINY_GUEST);
  EXPECT_EQ(vm["boot-source"]["boot_args"], "counter");
  EXPECT_EQ(vm["machine-config"]["mem_size_mib"], 96);
  EXPECT_EQ(vm["logger"]["log_path"], log);
  EXPECT_EQ(vm["metrics"]["metrics_path"], metrics);

  ASSERT_EQ(call("PUT", "/actions", R"({"action_type": "FlushMetrics"})").status, 204);
  const auto m = json::parse(read_file(metrics), nullptr, false);
  ASSERT_TRUE(m.is_object()) << read_file(metrics);
  EXPECT_GT(m["vm"]["vcpu_exits"]["io_out"].get<long>(), 0);
  // KVM's own counters: every exit that reached kiln left the guest through KVM first.
  EXPECT_GE(m["vm"]["kvm_counters"]["exits"].get<long>(), m["vm"]["vcpu_exits"]["io_out"].get<long>()) << m.dump();
  EXPECT_GT(m["vm"]["serial"]["tx_bytes"].get<long>(), 0);
  // The timer floor is on by default on nested-PVM hosts only (the tiny guest arms no timer).
  EXPECT_EQ(m["vm"]["timer_pacing"]["floor_us"].get<long>(), nested_pvm_host() ? 20000 : 0) << m.dump();
  EXPECT_EQ(m["vm"]["timer_pacing"]["deadline_writes"].get<long>(), 0) << m.dump();
  EXPECT_GE(m["api_server"]["requests_ok"].get<long>(), 8);
  const std::string logged = read_file(log);
  EXPECT_NE(logged.find("[debug]"), std::string::npos) << logged;
  EXPECT_NE(logged.find(".cpp:"), std::string::npos) << "show_log_origin: " << logged;
  EXPECT_NE(logged.find("api: PUT /actions -> 204"), std::string::npos) << logged;
  k->terminate();
  ASSERT_TRUE(k->wait_exit(30s));
  EXPECT_FALSE(std::filesystem::exists(sock_)) << "kiln removes its socket";
}

TEST_F(Api, BadRequestsAre400sNamingTheProblemAndLoseNothing) {
  if (!have_kvm()) GTEST_SKIP() << "needs /dev/kvm";
  auto k = start_kiln();
  expect_fault(call("DELETE", "/machine-config"), "Invalid request method and/or path");
  expect_fault(call("GET", "/no-such-thing"), "Invalid request method and/or path");
  expect_fault(call("PUT", "/boot-source", "{\"kernel_image_path\": "), "not valid JSON");
  expect_fault(call("PUT", "/boot-source", R"({"kernel_image_path": "/k", "kernel_args": "x"})"), "'kernel_args'");
  expect_fault(call("PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 4})"), "mem_size_mib");
  expect_fault(call("PATCH", "/vm", R"({"state": "Paused"})"), "before starting");
  expect_fault(call("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})"), "before starting");
  expect_fault(instance_start(), "PUT /boot-source");
  // A drive whose image is not there, or given twice as root; its PATCH before boot; a rate limiter.
  expect_fault(call("PUT", "/drives/rootfs", R"({"drive_id": "rootfs", "path_on_host": "/r", "is_root_device": true})"),
               "drives/rootfs: path_on_host /r: no such file");
  expect_fault(call("PATCH", "/drives/rootfs", R"({"drive_id": "rootfs", "path_on_host": "/r"})"), "before starting");
  expect_fault(call("PUT", "/entropy", R"({"rate_limiter": {"ops": {"size": 1, "refill_time": 1}}})"),
               "rate limiters are not there yet");
  // A network interface with no back end; a MAC that is not one.
  expect_fault(call("PUT", "/network-interfaces/eth0", R"({"iface_id": "eth0"})"), "give host_dev_name (a tap device)");
  expect_fault(call("PUT", "/network-interfaces/eth0", R"({"iface_id": "eth0", "host_dev_name": "t", "guest_mac": "x"})"),
               "guest_mac: 'x' is not a MAC address");
  // A reserved vsock CID; a resource kiln does not have yet.
  expect_fault(call("PUT", "/vsock", R"({"guest_cid": 2, "uds_path": "/nonexistent/v.sock"})"), "guest_cid 2");
  expect_fault(call("PUT", "/balloon", R"({"amount_mib": 1, "deflate_on_oom": false})"), "kiln has no balloon device yet");
  // Over 50 KiB: refused, with a declared length and without one (chunked).
  const std::string big = R"({"kernel_image_path": ")" + std::string(60 * 1024, 'a') + "\"}";
  expect_fault(call("PUT", "/boot-source", big), "larger than the limit of 51200");
  expect_fault(curl(sock_, "PUT", "/boot-source", big, {"-H", "Transfer-Encoding: chunked"}), "larger than the limit");
  // A missing kernel is InstanceStart's 400, and the VM can still be started once it is fixed.
  ASSERT_EQ(call("PUT", "/boot-source", json{{"kernel_image_path", dir_ + "/missing"}}.dump()).status, 204);
  expect_fault(instance_start(), "missing");
  EXPECT_EQ(json::parse(call("GET", "/").body)["state"], "Not started");
  expect_fault(call("PUT", "/logger", json{{"log_path", dir_ + "/no/such/dir/log"}}.dump()), "log_path");
  put_tiny("counter");
  ASSERT_EQ(instance_start().status, 204);
  ASSERT_TRUE(k->wait_for_output("tiny: count 00000001", 60s)) << k->output() << k->errors();
  expect_fault(instance_start(), "after starting");
  expect_fault(call("PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 64})"), "after starting");
  expect_fault(call("PUT", "/boot-source", json{{"kernel_image_path", KILN_TINY_GUEST}}.dump()), "after starting");
  expect_fault(call("PUT", "/actions", R"({"action_type": "FlushMetrics"})"), "PUT /metrics");
  EXPECT_EQ(json::parse(call("GET", "/").body)["state"], "Running") << "no failed request changed the VM";
}

TEST_F(Api, PauseStopsTheGuestAndResumeGoesOnWithoutGapOrRepeat) {
  if (!have_kvm()) GTEST_SKIP() << "needs /dev/kvm";
  auto k = start_kiln({"--serial", "stdio"});
  put_tiny("counter");
  ASSERT_EQ(instance_start().status, 204);
  // The guest's pace, so that the pause is watched for as long as a running guest takes to print
  // 20 lines (at least 1 s): a pause that did not stop it could not go unseen.
  ASSERT_TRUE(k->wait_for_output("tiny: count 00000005", 60s)) << k->errors();
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(k->wait_for_output("tiny: count 0000000f", 60s)) << k->errors();
  const auto line = (std::chrono::steady_clock::now() - t0) / 10;
  const auto window = std::max<std::chrono::steady_clock::duration>(1s, 20 * line);
  ASSERT_EQ(call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
  EXPECT_EQ(json::parse(call("GET", "/").body)["state"], "Paused");
  // What the guest printed before the 204 may still be on its way through the pipe.
  ASSERT_TRUE(k->wait_for_quiet_output(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::max<std::chrono::steady_clock::duration>(200ms, 5 * line)),
                                       30s))
      << "the guest goes on printing while paused";
  const auto at_pause = counts(k->output()).size();
  std::this_thread::sleep_for(window);
  EXPECT_EQ(counts(k->output()).size(), at_pause) << "the guest ran while paused";
  ASSERT_EQ(call("PATCH", "/vm", R"({"state": "Resumed"})").status, 204);
  ASSERT_TRUE(k->wait_for_output("tiny: count " + fmt_hex(at_pause + 5), 60s)) << k->errors();
  const auto v = counts(k->output());
  for (std::size_t i = 0; i < v.size(); ++i) ASSERT_EQ(v[i], i) << "a gap or a repeat at line " << i;
  k->terminate();
  EXPECT_TRUE(k->wait_exit(30s));
}

TEST_F(Api, SlowDeadAndManyClientsDoNotHoldAnythingUp) {
  if (!have_kvm()) GTEST_SKIP() << "needs /dev/kvm";
  auto k = start_kiln();
  put_tiny("counter");
  ASSERT_EQ(instance_start().status, 204);
  // Half a request, then silence; and a client that connects and vanishes.
  const int stalled = raw_connect(sock_, "PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"vcpu");
  ASSERT_GE(stalled, 0);
  ::close(raw_connect(sock_, "GET / HTTP/1.1\r\n"));
  const auto before = counts(k->output()).size();
  // 8 clients at once, 5 requests each, all answered while the stalled one waits.
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int c = 0; c < 8; ++c)
    clients.emplace_back([&] {
      for (int i = 0; i < 5; ++i)
        if (call("GET", "/machine-config").status == 200) ++ok;
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 40);
  ASSERT_TRUE(k->wait_for_output("tiny: count " + fmt_hex(before + 3), 60s)) << "the vCPU kept running";
  ::close(stalled);
  EXPECT_EQ(call("GET", "/").status, 200);
  k->terminate();
  EXPECT_TRUE(k->wait_exit(30s));
}

TEST_F(Api, InstanceStartUsesTheVmPreparedWhileWaitingAndOnlyIfItFits) {
  if (!have_kvm()) GTEST_SKIP() << "needs /dev/kvm";
  // The default size (no machine-config): the VM prepared at start is used.
  auto k = start_kiln({"--level", "debug"});
  ASSERT_EQ(call("PUT", "/boot-source", json{{"kernel_image_path", KILN_TINY_GUEST}, {"boot_args", "hello"}}.dump()).status, 204);
  ASSERT_EQ(instance_start().status, 204);
  auto st = k->wait_exit(60s);
  ASSERT_TRUE(st);
  EXPECT_EQ(*st, 0) << k->errors();
  EXPECT_NE(k->output().find("tiny: hello from the guest"), std::string::npos);
  EXPECT_NE(k->errors().find("using the VM prepared ahead (256 MiB registered)"), std::string::npos) << k->errors();
  // A size changed after the start: prepared again for the new size.
  std::filesystem::remove(sock_);
  k = start_kiln({"--level", "debug"});
  put_tiny("hello");
  ASSERT_EQ(instance_start().status, 204);
  st = k->wait_exit(60s);
  ASSERT_TRUE(st);
  EXPECT_EQ(*st, 0) << k->errors();
  EXPECT_NE(k->errors().find("using the VM prepared ahead (64 MiB registered)"), std::string::npos) << k->errors();
}

TEST_F(Api, ConfigFileBootsWithoutTheApi) {
  if (!have_kvm()) GTEST_SKIP() << "needs /dev/kvm";
  const std::string cfg = dir_ + "/vm.json";
  std::ofstream(cfg) << json{{"boot-source", {{"kernel_image_path", KILN_TINY_GUEST}, {"boot_args", "hello"}}},
                             {"machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 64}}}}
                            .dump();
  KilnProcess k({KILN_BINARY, "--config-file", cfg, "--no-api"});
  auto st = k.wait_exit(60s);
  ASSERT_TRUE(st);
  EXPECT_EQ(*st, 0) << k.errors();
  EXPECT_NE(k.output().find("tiny: hello from the guest"), std::string::npos);
}

TEST_F(Api, ASocketPathInUseAndASignalBeforeStart) {
  if (!have_kvm()) GTEST_SKIP() << "needs /dev/kvm";
  std::ofstream(sock_) << "";
  KilnProcess taken({KILN_BINARY, "--api-sock", sock_});
  auto st = taken.wait_exit(60s);
  ASSERT_TRUE(st);
  EXPECT_NE(*st, 0);
  EXPECT_NE(taken.errors().find("--api-sock"), std::string::npos) << taken.errors();
  EXPECT_TRUE(std::filesystem::exists(sock_)) << "kiln left the user's file alone";
  std::filesystem::remove(sock_);
  auto k = start_kiln();
  k->terminate();
  st = k->wait_exit(60s);
  ASSERT_TRUE(st) << "a signal before InstanceStart ends kiln";
  EXPECT_NE(k->errors().find("before InstanceStart"), std::string::npos) << k->errors();
  EXPECT_FALSE(std::filesystem::exists(sock_));
}

TEST_F(Api, AMetadataDocumentOverTheDefaultBodyLimitFitsOnceThePayloadLimitIsRaised) {
  if (!have_kvm()) GTEST_SKIP() << "needs /dev/kvm";
  // ~90 KiB of metadata: over Firecracker's default 51200-byte body, under the raised limit (and
  // under what one argument to curl may be).
  const std::string doc = json{{"latest", {{"user-data", std::string(90 * 1024, 'u')}}}}.dump();
  {
    auto k = start_kiln();
    expect_fault(call("PUT", "/mmds", doc), "--http-api-max-payload-size");
    EXPECT_EQ(call("GET", "/mmds").body, "{}") << "the refused body changed nothing";
    k->terminate();
    ASSERT_TRUE(k->wait_exit(30s));
  }
  // Raised, the store's limit follows it unless --mmds-size-limit says otherwise.
  auto k = start_kiln({"--http-api-max-payload-size", "100000"});
  ASSERT_EQ(call("PUT", "/mmds", doc).status, 204);
  EXPECT_EQ(json::parse(call("GET", "/mmds").body), json::parse(doc));
  expect_fault(call("PUT", "/mmds", std::string(100001, ' ')), "larger than the limit of 100000");
  k->terminate();
  ASSERT_TRUE(k->wait_exit(30s));
  auto small = start_kiln({"--http-api-max-payload-size", "100000", "--mmds-size-limit", "4096"});
  const auto r = call("PUT", "/mmds", doc);
  EXPECT_EQ(r.status, 400) << "the body is taken, the store refuses it: " << r.body;
  EXPECT_NE(r.body.find("4096"), std::string::npos) << r.body;
}

TEST_F(Api, RunFromFlagsServesTheApiForTheVmItStarted) {
  if (!have_kvm()) GTEST_SKIP() << "needs /dev/kvm";
  KilnProcess k(kiln_run({"--kernel", KILN_TINY_GUEST, "--cmdline", "counter", "--memory", "64M", "--cpus", "2",
                          "--api-sock", sock_}));
  ASSERT_TRUE(wait_for_socket(sock_, 60000)) << k.errors();
  ASSERT_TRUE(k.wait_for_output("tiny: count 00000003", 60s)) << k.output() << k.errors();
  EXPECT_EQ(json::parse(call("GET", "/").body)["state"], "Running");
  const json vm = json::parse(call("GET", "/vm/config").body);
  EXPECT_EQ(vm["boot-source"]["kernel_image_path"], KILN_TINY_GUEST);
  EXPECT_EQ(vm["boot-source"]["boot_args"], "counter");
  EXPECT_EQ(vm["machine-config"]["vcpu_count"], 2);
  EXPECT_EQ(vm["machine-config"]["mem_size_mib"], 64);
  expect_fault(call("PUT", "/boot-source", json{{"kernel_image_path", KILN_TINY_GUEST}}.dump()), "after starting");
  expect_fault(instance_start(), "after starting");
  ASSERT_EQ(call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
  EXPECT_EQ(json::parse(call("GET", "/").body)["state"], "Paused");
  ASSERT_EQ(call("PATCH", "/vm", R"({"state": "Resumed"})").status, 204);
  const auto n = counts(k.output()).size();
  ASSERT_TRUE(k.wait_for_output("tiny: count " + fmt_hex(n + 3), 60s)) << "the guest runs again";
  k.terminate();
  EXPECT_EQ(k.wait_exit(30s).value_or(-1), 6) << k.errors();
  EXPECT_FALSE(std::filesystem::exists(sock_)) << "kiln removes its socket";
}

TEST_F(Api, CpuConfigPutOverTheSocketReachesTheGuest) {
  if (!have_kvm()) GTEST_SKIP() << "needs /dev/kvm";
  KilnProcess host(kiln_run({"--kernel", KILN_TINY_GUEST, "--memory", "64M", "--cmdline", "cpuid"}));
  ASSERT_EQ(host.wait_exit(60s).value_or(-1), 0) << host.errors();
  auto k = start_kiln();
  put_tiny("cpuid");
  expect_fault(call("PUT", "/cpu-config", R"({"cpuid_modifiers": [{"leaf": "0x1"}]})"), "cpu-config");
  ASSERT_EQ(call("PUT", "/cpu-config", kClearLahfCpuConfig).status, 204);
  ASSERT_EQ(instance_start().status, 204);
  ASSERT_EQ(k->wait_exit(60s).value_or(-1), 0) << k->errors();
  expect_only_lahf_cleared(guest_cpuid(host.output()), guest_cpuid(k->output()));
  EXPECT_NE(k->errors().find("MSR 0xdeadbeef"), std::string::npos) << k->errors();
}

// Firecracker's logger and metrics files: a logger FIFO nobody reads never holds kiln up, and the
// lines it could not take are counted in the metrics; metrics lines come every period without
// being asked, and once more when the VM ends.
TEST_F(Api, LoggerFifoWithNoReaderAndMetricsFlushedPeriodicallyAndAtTheEnd) {
  if (!have_kvm()) GTEST_SKIP() << "needs /dev/kvm";
  const std::string fifo = dir_ + "/log.fifo", metrics = dir_ + "/metrics.json";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  ::setenv("KILN_METRICS_PERIOD_MS", "200", 1);
  auto k = start_kiln();
  ::unsetenv("KILN_METRICS_PERIOD_MS");
  ASSERT_EQ(call("PUT", "/logger", json{{"log_path", fifo}, {"level", "Debug"}}.dump()).status, 204)
      << "opening a FIFO with no reader does not wait for one";
  ASSERT_EQ(call("PUT", "/metrics", json{{"metrics_path", metrics}}.dump()).status, 204);
  put_tiny("counter");
  ASSERT_EQ(instance_start().status, 204);
  ASSERT_TRUE(k->wait_for_output("tiny: count 00000003", 60s)) << k->errors();
  // 3000 requests on one connection, each a debug line of ~60 bytes: about three times what a
  // pipe holds (64 KiB).
  const auto start = std::chrono::steady_clock::now();
  const auto flood = curl(sock_, "GET", "/version?[1-3000]");
  EXPECT_EQ(flood.status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 30s) << "a full log FIFO never holds the API up";
  auto lines = [&] {
    std::vector<json> v;
    std::istringstream in(read_file(metrics));
    std::string line;
    while (std::getline(in, line)) v.push_back(json::parse(line, nullptr, false));
    return v;
  };
  // Every 200 ms a line, unasked: wait for three more than there are now.
  const auto first = lines().size();
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (lines().size() < first + 3 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(50ms);
  auto v = lines();
  ASSERT_GE(v.size(), first + 3) << read_file(metrics);
  for (const auto& l : v) ASSERT_TRUE(l.is_object()) << read_file(metrics);
  EXPECT_GT(v.back()["logger"]["missed_log_count"].get<long>(), 0) << v.back().dump();
  EXPECT_GE(v.back()["api_server"]["requests_ok"].get<long>(), 3000) << v.back().dump();
  const auto before_end = v.size();
  const long exits_before = v.back()["vm"]["vcpu_exits"]["io_out"].get<long>();
  k->terminate();
  ASSERT_EQ(k->wait_exit(30s).value_or(-1), 6) << k->errors();
  v = lines();
  ASSERT_GT(v.size(), before_end) << "a last line when the VM ends";
  EXPECT_GE(v.back()["vm"]["vcpu_exits"]["io_out"].get<long>(), exits_before);
  EXPECT_EQ(v.back()["metrics"]["lines_written"].get<std::size_t>(), v.size() - 1) << "the lines before it";
}

}  // namespace
}  // namespace kiln::test
