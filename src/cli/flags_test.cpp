#include "cli/flags.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace kiln {
namespace {

// A path in TempDir() named for this test process, its file removed when the test ends.
class TempPath {
 public:
  explicit TempPath(const std::string& name)
      : path_(::testing::TempDir() + "/kiln-flags-" + std::to_string(::getpid()) + "-" + name) {}
  ~TempPath() { std::remove(path_.c_str()); }
  TempPath(const TempPath&) = delete;
  TempPath& operator=(const TempPath&) = delete;
  operator const std::string&() const { return path_; }  // NOLINT: used where a path string is

 private:
  std::string path_;
};

Result<std::variant<RunCommand, ShowText>> parse(std::vector<std::string> a) {
  a.insert(a.begin(), "kiln");
  return parse_command_line(a);
}

TEST(Flags, RunFillsTheConfig) {
  auto r = parse({"run", "--kernel", "/proc/self/exe", "--cpus", "2", "--memory", "1G", "--cmdline", "quiet",
                  "--serial", "file:/tmp/c", "--boot-timer", "--no-host-args", "--no-syscall-fix"});
  ASSERT_TRUE(r) << r.error().message();
  const auto& c = std::get<RunCommand>(*r).config;
  EXPECT_EQ(c.boot_source.kernel_image_path, "/proc/self/exe");
  EXPECT_EQ(c.machine_config.vcpu_count, 2u);
  EXPECT_EQ(c.machine_config.mem_size_mib, 1024u);
  EXPECT_EQ(c.boot_source.boot_args, "quiet");
  EXPECT_EQ(c.kiln.serial.mode, SerialConfig::Mode::kFile);
  EXPECT_TRUE(c.kiln.boot_timer);
  EXPECT_FALSE(c.kiln.host_kernel_args);
  EXPECT_FALSE(c.kiln.syscall_fix);
  EXPECT_FALSE(c.boot_source.initrd_path);
  auto plain = parse({"run", "--kernel", "/proc/self/exe"});
  ASSERT_TRUE(plain);
  EXPECT_TRUE(std::get<RunCommand>(*plain).config.kiln.syscall_fix) << "on by default (nested-PVM hosts use it)";
  EXPECT_EQ(std::get<RunCommand>(*plain).config.kiln.timer_floor.mode, TimerFloor::Mode::kAuto);
}

TEST(Flags, ProfileFlagsFillTheProfileAndNeedAFile) {
  auto r = parse({"run", "--kernel", "/proc/self/exe", "--profile", "/tmp/p.txt", "--profile-hz", "250",
                  "--profile-symbols", "/boot/System.map", "--profile-top", "300"});
  ASSERT_TRUE(r) << r.error().message();
  const auto& c = std::get<RunCommand>(*r).config;
  ASSERT_TRUE(c.kiln.profile);
  EXPECT_EQ(c.kiln.profile->path, "/tmp/p.txt");
  EXPECT_EQ(c.kiln.profile->hz, 250u);
  EXPECT_EQ(c.kiln.profile->symbols, "/boot/System.map");
  EXPECT_EQ(c.kiln.profile->top, 300u);
  auto plain = parse({"run", "--kernel", "/proc/self/exe"});
  ASSERT_TRUE(plain);
  EXPECT_FALSE(std::get<RunCommand>(*plain).config.kiln.profile);
  auto orphan = parse({"run", "--kernel", "/proc/self/exe", "--profile-hz", "100"});
  ASSERT_FALSE(orphan);
  EXPECT_NE(orphan.error().message().find("need --profile FILE"), std::string::npos) << orphan.error().message();
  auto fast = parse({"run", "--kernel", "/proc/self/exe", "--profile", "/tmp/p", "--profile-hz", "20000"});
  ASSERT_FALSE(fast);
  EXPECT_NE(fast.error().message().find("--profile-hz 20000"), std::string::npos) << fast.error().message();
  auto none = parse({"run", "--kernel", "/proc/self/exe", "--profile", "/tmp/p", "--profile-top", "0"});
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message().find("--profile-top 0: give how many functions"), std::string::npos)
      << none.error().message();
  auto orphan_top = parse({"run", "--kernel", "/proc/self/exe", "--profile-top", "10"});
  ASSERT_FALSE(orphan_top);
  EXPECT_NE(orphan_top.error().message().find("need --profile FILE"), std::string::npos);
}

TEST(Flags, DisksAndRngFillTheDrivesAndEntropy) {
  auto r = parse({"run", "--kernel", "/proc/self/exe", "--disk", "path=/tmp/root.ext4,root", "--disk",
                  "path=/tmp/data.img,readonly,serial=DATA1,cache=unsafe,engine=sync", "--disk",
                  "path=/tmp/x.img,id=scratch", "--rng"});
  ASSERT_TRUE(r) << r.error().message();
  const auto& d = std::get<RunCommand>(*r).config.drives;
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].drive_id, "rootfs");
  EXPECT_TRUE(d[0].is_root_device);
  EXPECT_FALSE(d[0].is_read_only);
  EXPECT_EQ(d[1].drive_id, "disk1");
  EXPECT_TRUE(d[1].is_read_only);
  EXPECT_EQ(d[1].serial, "DATA1");
  EXPECT_EQ(d[1].cache_type, DriveConfig::Cache::kUnsafe);
  EXPECT_EQ(d[1].io_engine, DriveConfig::IoEngine::kSync);
  EXPECT_EQ(d[2].drive_id, "scratch");
  EXPECT_EQ(d[2].io_engine, DriveConfig::IoEngine::kAsync);
  EXPECT_TRUE(std::get<RunCommand>(*r).config.entropy.has_value());
}

TEST(Flags, NetFlagsFillTheNetworkInterfaces) {
  auto r = parse({"run", "--kernel", "/proc/self/exe", "--net", "tap=tap0,mac=06:00:AC:10:00:02", "--net",
                  "user,hostfwd=tcp::8080-:80,hostfwd=udp:127.0.0.1:5353-:53,id=web"});
  ASSERT_TRUE(r) << r.error().message();
  const auto& n = std::get<RunCommand>(*r).config.network_interfaces;
  ASSERT_EQ(n.size(), 2u);
  EXPECT_EQ(n[0].iface_id, "eth0");
  EXPECT_EQ(n[0].host_dev_name, "tap0");
  EXPECT_EQ(n[0].guest_mac, "06:00:ac:10:00:02");
  EXPECT_FALSE(n[0].user_mode());
  EXPECT_EQ(n[1].iface_id, "web");
  EXPECT_TRUE(n[1].user_mode());
  EXPECT_EQ(n[1].hostfwd, (std::vector<std::string>{"tcp::8080-:80", "udp:127.0.0.1:5353-:53"}));
  // The same in the config's JSON, and back.
  const auto j = to_json(std::get<RunCommand>(*r).config);
  EXPECT_EQ(j["network-interfaces"][0]["host_dev_name"], "tap0");
  EXPECT_EQ(j["network-interfaces"][1]["kiln_user_net"]["hostfwd"][1], "udp:127.0.0.1:5353-:53");
  auto back = vm_config_from_json(j);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->network_interfaces, n);
}

TEST(Flags, MmdsFlagsFillTheMetadataServiceAndItsStore) {
  const TempPath meta("metadata.json");
  {
    std::ofstream(meta) << R"({"latest": {"meta-data": {"ami-id": "ami-1"}}})";
  }
  auto r = parse({"run", "--kernel", "/proc/self/exe", "--net", "user", "--net", "user,id=web", "--mmds", "version=V2",
                  "--metadata", meta, "--mmds-size-limit", "4096"});
  ASSERT_TRUE(r) << r.error().message();
  const auto& cmd = std::get<RunCommand>(*r);
  ASSERT_TRUE(cmd.config.mmds);
  EXPECT_EQ(cmd.config.mmds->version, "V2");
  EXPECT_EQ(cmd.config.mmds->ipv4_address, "169.254.169.254");
  EXPECT_EQ(cmd.config.mmds->network_interfaces, (std::vector<std::string>{"eth0", "web"}));  // all, by default
  EXPECT_EQ(cmd.mmds_size_limit, 4096u);
  ASSERT_TRUE(cmd.metadata);
  EXPECT_EQ((*cmd.metadata)["latest"]["meta-data"]["ami-id"], "ami-1");
  // As a config file has it, and back.
  const auto j = to_json(cmd.config);
  EXPECT_EQ(j["mmds-config"]["network_interfaces"][1], "web");
  auto back = vm_config_from_json(j);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->mmds, cmd.config.mmds);
  r = parse({"run", "--kernel", "/proc/self/exe", "--net", "user", "--net", "user,id=web", "--mmds",
             "iface=web,ipv4=169.254.170.2"});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(std::get<RunCommand>(*r).config.mmds->network_interfaces, std::vector<std::string>{"web"});
  EXPECT_EQ(std::get<RunCommand>(*r).config.mmds->ipv4_address, "169.254.170.2");
  EXPECT_FALSE(parse({"run", "--kernel", "/proc/self/exe", "--net", "user", "--mmds", "color=blue"}));
}

TEST(Flags, TheApiPayloadLimitIsTheStoresUnlessItHasItsOwn) {
  auto r = parse({"--api-sock", "/tmp/x.sock"});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(std::get<RunCommand>(*r).http_api_max_payload_size, 51200u);  // Firecracker's defaults
  EXPECT_EQ(std::get<RunCommand>(*r).mmds_size_limit, 51200u);
  r = parse({"--api-sock", "/tmp/x.sock", "--http-api-max-payload-size", "1048576"});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(std::get<RunCommand>(*r).http_api_max_payload_size, 1048576u);
  EXPECT_EQ(std::get<RunCommand>(*r).mmds_size_limit, 1048576u);
  r = parse({"run", "--kernel", "/proc/self/exe", "--http-api-max-payload-size", "1048576", "--mmds-size-limit", "4096"});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(std::get<RunCommand>(*r).http_api_max_payload_size, 1048576u);
  EXPECT_EQ(std::get<RunCommand>(*r).mmds_size_limit, 4096u);
  auto bad = parse({"--api-sock", "/tmp/x.sock", "--http-api-max-payload-size", "0"});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("--http-api-max-payload-size"), std::string::npos) << bad.error().message();
}

TEST(Flags, VsockFlagFillsTheDevice) {
  const std::string path = ::testing::TempDir() + "/kiln-flags-vsock.sock";
  auto r = parse({"run", "--kernel", "/proc/self/exe", "--vsock", "cid=7,uds=" + path});
  ASSERT_TRUE(r) << r.error().message();
  const auto& v = std::get<RunCommand>(*r).config.vsock;
  ASSERT_TRUE(v);
  EXPECT_EQ(v->guest_cid, 7u);
  EXPECT_EQ(v->uds_path, path);
  const auto j = to_json(std::get<RunCommand>(*r).config);
  EXPECT_EQ(j["vsock"]["guest_cid"], 7);
  auto back = vm_config_from_json(j);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->vsock, v);
  for (const char* bad : {"cid=1,uds=/tmp/x", "uds=/tmp/x", "cid=3", "cid=3,uds=/tmp/x,port=9", "cid=99999999999,uds=/tmp/x"})
    EXPECT_FALSE(parse({"run", "--kernel", "/proc/self/exe", "--vsock", bad})) << bad;
}

TEST(Flags, BadDisksAreOneLineErrors) {
  const std::pair<std::vector<std::string>, const char*> cases[] = {
      {{"--disk", "path=/a,color=red"}, "unknown key 'color'"},
      {{"--disk", "readonly"}, "path=FILE is required"},
      {{"--disk", "path=/a,root", "--disk", "path=/b,root"}, "only one drive can be the root"},
      {{"--disk", "path=/a,id=x", "--disk", "path=/b,id=x"}, "'x' is given twice"},
      {{"--disk", "path=/a,cache=none"}, "expected writeback or unsafe"},
      {{"--disk", "path=/a,id=no-dash"}, "only letters, digits and '_'"},
      {{"--disk", "path=/a,readonly=yes"}, "takes no value"},
  };
  for (const auto& [flags, want] : cases) {
    std::vector<std::string> a{"run", "--kernel", "/proc/self/exe"};
    a.insert(a.end(), flags.begin(), flags.end());
    auto r = parse(a);
    ASSERT_FALSE(r) << want;
    EXPECT_NE(r.error().message().find(want), std::string::npos) << r.error().message();
    EXPECT_EQ(r.error().message().find('\n'), std::string::npos) << "one line";
  }
}

TEST(Flags, NoCmdlineMeansTheDefaultLater) {
  auto r = parse({"run", "--kernel", "/proc/self/exe"});
  ASSERT_TRUE(r);
  EXPECT_FALSE(std::get<RunCommand>(*r).config.boot_source.boot_args);
}

void expect_error(std::vector<std::string> a, std::string_view needle) {
  auto r = parse(std::move(a));
  ASSERT_FALSE(r);
  const auto msg = r.error().message();
  EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
}

TEST(Flags, BadFlagsAreOneLineErrorsNamingTheFlag) {
  expect_error({"run"}, "--kernel");
  expect_error({"run", "--kernel", "/nonexistent"}, "--kernel");
  expect_error({"run", "--kernel", "/proc/self/exe", "--cpus", "0"}, "--cpus");
  expect_error({"run", "--kernel", "/proc/self/exe", "--cpus", "lots"}, "--cpus");
  expect_error({"run", "--kernel", "/proc/self/exe", "--memory", "12Q"}, "--memory");
  expect_error({"run", "--kernel", "/proc/self/exe", "--memory", "1M"}, "--memory");
  expect_error({"run", "--kernel", "/proc/self/exe", "--serial", "tcp:1"}, "--serial");
  expect_error({"run", "--kernel", "/proc/self/exe", "--frobnicate"}, "--frobnicate");
  expect_error({"run", "--kernel", "/proc/self/exe", "--initrd", "/nonexistent"}, "--initrd");
  expect_error({}, "run");
  expect_error({"--no-api"}, "--config-file");
  expect_error({"--config-file", "/nonexistent"}, "--config-file");
}

TEST(Flags, TimerFloorAutoOffOrMicroseconds) {
  auto on = parse({"run", "--kernel", "/proc/self/exe", "--timer-floor", "20000"});
  ASSERT_TRUE(on) << on.error().message();
  EXPECT_EQ(std::get<RunCommand>(*on).config.kiln.timer_floor.mode, TimerFloor::Mode::kOn);
  EXPECT_EQ(std::get<RunCommand>(*on).config.kiln.timer_floor.us, 20000u);
  auto off = parse({"run", "--kernel", "/proc/self/exe", "--timer-floor", "off"});
  ASSERT_TRUE(off);
  EXPECT_EQ(std::get<RunCommand>(*off).config.kiln.timer_floor.mode, TimerFloor::Mode::kOff);
  for (const char* bad : {"99", "1000001", "10ms", "", "-5", "99999999999"})
    expect_error({"run", "--kernel", "/proc/self/exe", "--timer-floor", bad}, "--timer-floor");
}

TEST(Flags, ApiSocketWaitsForInstanceStart) {
  auto r = parse({"--api-sock", "/tmp/k.sock", "--boot-timer", "--id", "vm7", "--serial", "none"});
  ASSERT_TRUE(r) << r.error().message();
  const auto& cmd = std::get<RunCommand>(*r);
  EXPECT_FALSE(cmd.start_now);
  EXPECT_EQ(cmd.api_sock, "/tmp/k.sock");
  EXPECT_EQ(cmd.id, "vm7");
  EXPECT_TRUE(cmd.config.kiln.boot_timer);
  EXPECT_EQ(cmd.config.kiln.serial.mode, SerialConfig::Mode::kNone);
}

TEST(Flags, ConfigFileStartsAtOnce) {
  const TempPath path("config.json");
  {
    std::ofstream f(path);
    f << R"({"boot-source": {"kernel_image_path": "/vmlinux", "boot_args": "quiet"},
             "machine-config": {"vcpu_count": 2, "mem_size_mib": 128}})";
  }
  auto r = parse({"--config-file", path, "--no-api"});
  ASSERT_TRUE(r) << r.error().message();
  const auto& cmd = std::get<RunCommand>(*r);
  EXPECT_TRUE(cmd.start_now);
  EXPECT_TRUE(cmd.api_sock.empty());
  EXPECT_EQ(cmd.config.machine_config.vcpu_count, 2u);
  EXPECT_EQ(cmd.config.boot_source.boot_args, "quiet");
  {
    std::ofstream f(path);
    f << R"({"boot-source": {"kernel_image_path": "/vmlinux", "bogus": 1}})";
  }
  r = parse({"--config-file", path});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("'bogus'"), std::string::npos) << r.error().message();
}

TEST(Flags, HelpShowsExamplesAndExitCodes) {
  auto r = parse({"run", "--help"});
  ASSERT_TRUE(r);
  const auto& t = std::get<ShowText>(*r).text;
  EXPECT_NE(t.find("Examples:"), std::string::npos);
  EXPECT_NE(t.find("--kernel"), std::string::npos);
  EXPECT_NE(t.find("Exit status"), std::string::npos);
  auto v = parse({"--version"});
  ASSERT_TRUE(v);
  EXPECT_NE(std::get<ShowText>(*v).text.find("kiln "), std::string::npos);
}

}  // namespace
}  // namespace kiln
