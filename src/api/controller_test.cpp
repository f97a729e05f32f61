#include "api/controller.h"

#include <gtest/gtest.h>

namespace kiln::api {
namespace {

using nlohmann::json;

struct FakeBackend : VmBackend {
  Result<void> configure_logger(const LoggerConfig&) override { return log_result; }
  Result<void> configure_metrics(const MetricsConfig&) override { return {}; }
  void machine_config_changed(const MachineConfig& c) override { last_machine = c; }
  Result<void> check_drive(const DriveConfig& d) override {
    if (!drive_result) return drive_result;
    checked.push_back(d.drive_id);
    return {};
  }
  Result<void> update_drive(const DriveConfig& d) override {
    updated.push_back(d.path_on_host);
    return {};
  }
  Result<void> start(const VmConfig& c) override {
    if (!start_result) return start_result;
    started = c;
    return {};
  }
  Result<void> pause() override { ++pauses; return {}; }
  Result<void> resume() override { ++resumes; return {}; }
  Result<void> send_ctrl_alt_del() override { ++cads; return {}; }
  Result<void> flush_metrics() override { ++flushes; return {}; }
  Result<void> log_result{};
  Result<void> start_result{};
  Result<void> drive_result{};
  std::vector<std::string> checked, updated;
  std::optional<VmConfig> started;
  std::optional<MachineConfig> last_machine;
  int pauses = 0, resumes = 0, cads = 0, flushes = 0;
};

class ControllerTest : public ::testing::Test {
 protected:
  HttpResponse call(const std::string& method, const std::string& path, const std::string& body = "") {
    return c.handle({method, path, body});
  }
  // A 400 whose fault_message contains `needle`.
  void expect_fault(const HttpResponse& r, std::string_view needle) {
    ASSERT_EQ(r.status, 400) << r.body;
    const json j = json::parse(r.body);
    ASSERT_TRUE(j.contains("fault_message")) << r.body;
    EXPECT_NE(j["fault_message"].get<std::string>().find(needle), std::string::npos) << r.body;
  }
  void boot() {
    ASSERT_EQ(call("PUT", "/boot-source", R"({"kernel_image_path": "/k", "boot_args": "console=ttyS0"})").status, 204);
    ASSERT_EQ(call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
  }
  FakeBackend b;
  Controller c{b, {.id = "vm1", .version = "0.1.0"}};
};

TEST_F(ControllerTest, InstanceInfoAndVersion) {
  auto r = call("GET", "/");
  ASSERT_EQ(r.status, 200);
  auto j = json::parse(r.body);
  EXPECT_EQ(j["id"], "vm1");
  EXPECT_EQ(j["state"], "Not started");
  EXPECT_EQ(j["app_name"], "kiln");
  // Firecracker's InstanceInfo: these four, all required, and state one of its enum's values.
  EXPECT_EQ(j.size(), 4u) << j.dump();
  EXPECT_EQ(j["vmm_version"], "0.1.0");
  EXPECT_EQ(json::parse(call("GET", "/version").body)["firecracker_version"], "0.1.0");
  boot();
  EXPECT_EQ(json::parse(call("GET", "/").body)["state"], "Running");
}

TEST_F(ControllerTest, GettingStartedSequenceStartsWhatWasPut) {
  ASSERT_EQ(call("PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 128})").status, 204);
  ASSERT_EQ(call("PATCH", "/machine-config", R"({"mem_size_mib": 256})").status, 204);
  ASSERT_TRUE(b.last_machine);
  EXPECT_EQ(b.last_machine->mem_size_mib, 256u) << "the backend hears of each change, to prepare the VM";
  boot();
  ASSERT_TRUE(b.started);
  EXPECT_EQ(b.started->machine_config.vcpu_count, 2u);
  EXPECT_EQ(b.started->machine_config.mem_size_mib, 256u);
  EXPECT_EQ(b.started->boot_source.kernel_image_path, "/k");
  auto vm = json::parse(call("GET", "/vm/config").body);
  EXPECT_EQ(vm["machine-config"]["vcpu_count"], 2);
  EXPECT_EQ(vm["boot-source"]["boot_args"], "console=ttyS0");
  EXPECT_EQ(json::parse(call("GET", "/machine-config").body)["mem_size_mib"], 256);
}

TEST_F(ControllerTest, PutMachineConfigNeedsTheWholeAndResetsTheRest) {
  expect_fault(call("PUT", "/machine-config", R"({"vcpu_count": 2})"), "mem_size_mib is required");
  ASSERT_EQ(call("PATCH", "/machine-config", R"({"kiln_cpu_template": "minimal"})").status, 204);
  ASSERT_EQ(call("PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 64})").status, 204);
  EXPECT_EQ(json::parse(call("GET", "/machine-config").body)["kiln_cpu_template"], "host");
  // Taken and ignored would be a lie: kiln has no snapshots to track dirty pages for.
  expect_fault(call("PATCH", "/machine-config", R"({"track_dirty_pages": true})"), "track_dirty_pages");
  ASSERT_EQ(call("PATCH", "/machine-config", R"({"track_dirty_pages": false})").status, 204);
  EXPECT_EQ(json::parse(call("GET", "/machine-config").body)["track_dirty_pages"], false);
}

TEST_F(ControllerTest, BadBodiesAreNamed) {
  expect_fault(call("PUT", "/boot-source", R"({"kernel_image_path": "/k", "bogus": 1})"), "'bogus'");
  expect_fault(call("PUT", "/boot-source", R"({"kernel_image_path": 7})"), "kernel_image_path");
  expect_fault(call("PUT", "/boot-source", "{not json"), "not valid JSON");
  expect_fault(call("PUT", "/boot-source", ""), "needs a JSON body");
  expect_fault(call("PUT", "/machine-config", R"({"vcpu_count": 0, "mem_size_mib": 64})"), "vcpu_count");
  expect_fault(call("PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 64, "smt": true})"), "smt");
  expect_fault(call("PUT", "/actions", R"({"action_type": "Explode"})"), "Explode");
  expect_fault(call("PUT", "/actions", R"({"action_type": "InstanceStart", "payload": 1})"), "'payload'");
  expect_fault(call("PUT", "/logger", R"({"level": "Loud"})"), "Loud");
  expect_fault(call("PUT", "/metrics", R"({})"), "metrics_path is required");
}

TEST_F(ControllerTest, WrongMethodOrPathAndMissingResources) {
  expect_fault(call("DELETE", "/machine-config"), "Invalid request method and/or path: DELETE /machine-config");
  expect_fault(call("GET", "/nope"), "Invalid request method and/or path");
  expect_fault(call("POST", "/actions", R"({"action_type": "InstanceStart"})"), "Invalid request method");
  expect_fault(call("PUT", "/drives/rootfs", R"({"drive_id": "rootfs"})"), "path_on_host is required");
  expect_fault(call("PUT", "/network-interfaces/eth0", "{}"), "iface_id is required");
  expect_fault(call("PUT", "/vsock", "{}"), "vsock");
  expect_fault(call("PUT", "/entropy", R"({"rate_limiter": {}})"), "rate limiters are not there yet");
  EXPECT_FALSE(b.started);
}

TEST_F(ControllerTest, BytesThatAreNotUtf8InTheRequestLineAreReplacedInTheFault) {
  // Found by the fuzzer: the fault message echoes the method, and JSON must be UTF-8.
  expect_fault(call("PU\xecT", "/machine-config\xff"), "Invalid request method");
}

TEST_F(ControllerTest, PreAndPostBootRules) {
  expect_fault(call("PUT", "/actions", R"({"action_type": "InstanceStart"})"), "PUT /boot-source");
  expect_fault(call("PATCH", "/vm", R"({"state": "Paused"})"), "before starting");
  expect_fault(call("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})"), "before starting");
  boot();
  expect_fault(call("PUT", "/boot-source", R"({"kernel_image_path": "/other"})"), "after starting");
  expect_fault(call("PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 64})"), "after starting");
  expect_fault(call("PUT", "/actions", R"({"action_type": "InstanceStart"})"), "after starting");
  expect_fault(call("PUT", "/logger", R"({"level": "Info"})"), "after starting");
  EXPECT_EQ(json::parse(call("GET", "/vm/config").body)["boot-source"]["kernel_image_path"], "/k");
}

TEST_F(ControllerTest, PauseResumeAndActions) {
  boot();
  ASSERT_EQ(call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
  EXPECT_EQ(json::parse(call("GET", "/").body)["state"], "Paused");
  ASSERT_EQ(call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
  EXPECT_EQ(b.pauses, 1) << "pausing a paused VM is a no-op";
  ASSERT_EQ(call("PATCH", "/vm", R"({"state": "Resumed"})").status, 204);
  EXPECT_EQ(b.resumes, 1);
  expect_fault(call("PATCH", "/vm", R"({"state": "Sleeping"})"), "Sleeping");
  ASSERT_EQ(call("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
  EXPECT_EQ(b.cads, 1);
  expect_fault(call("PUT", "/actions", R"({"action_type": "FlushMetrics"})"), "PUT /metrics");
}

TEST_F(ControllerTest, FailuresOfTheBackendAreTheRequestsAndLoseNothing) {
  b.start_result = plain_error("--kernel '/k': no such file");
  ASSERT_EQ(call("PUT", "/boot-source", R"({"kernel_image_path": "/k"})").status, 204);
  expect_fault(call("PUT", "/actions", R"({"action_type": "InstanceStart"})"), "no such file");
  EXPECT_EQ(json::parse(call("GET", "/").body)["state"], "Not started");
  b.start_result = {};
  ASSERT_EQ(call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204) << "the config was kept";
}

TEST_F(ControllerTest, ALoggerTheBackendCannotOpenIsA400AndTheOldOneStays) {
  ASSERT_EQ(call("PUT", "/logger", R"({"log_path": "/tmp/good.log", "level": "Info"})").status, 204);
  b.log_result = plain_error("log_path '/no/dir/log': cannot open it for writing");
  expect_fault(call("PUT", "/logger", R"({"log_path": "/no/dir/log", "level": "Debug"})"), "cannot open it");
  const json logger = json::parse(call("GET", "/vm/config").body)["logger"];
  EXPECT_EQ(logger["log_path"], "/tmp/good.log") << "the failed PUT changed nothing";
  EXPECT_EQ(logger["level"], "Info");
  b.log_result = {};
  ASSERT_EQ(call("PUT", "/logger", R"({"log_path": "/tmp/other.log"})").status, 204);
  EXPECT_EQ(json::parse(call("GET", "/vm/config").body)["logger"]["log_path"], "/tmp/other.log");
}

TEST_F(ControllerTest, CpuTemplateAnswersStayInsideFirecrackersEnum) {
  // Firecracker's CpuTemplate is C3, T2, T2S, T2CL, T2A, V1N1 or None: kiln's own names go in
  // kiln_cpu_template, and what GET answers can be PUT back as it is.
  json mc = json::parse(call("GET", "/machine-config").body);
  EXPECT_EQ(mc["cpu_template"], "None");
  EXPECT_EQ(mc["kiln_cpu_template"], "host");
  ASSERT_EQ(call("PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 128, "kiln_cpu_template": "minimal"})").status, 204);
  mc = json::parse(call("GET", "/machine-config").body);
  EXPECT_EQ(mc["cpu_template"], "None");
  EXPECT_EQ(mc["kiln_cpu_template"], "minimal");
  EXPECT_EQ(json::parse(call("GET", "/vm/config").body)["machine-config"], mc);
  ASSERT_EQ(call("PUT", "/machine-config", mc.dump()).status, 204) << "GET's answer PUT back";
  EXPECT_EQ(json::parse(call("GET", "/machine-config").body), mc);
  ASSERT_EQ(call("PATCH", "/machine-config", R"({"cpu_template": "None"})").status, 204);
  EXPECT_EQ(json::parse(call("GET", "/machine-config").body)["kiln_cpu_template"], "host");
  ASSERT_EQ(call("PATCH", "/machine-config", R"({"cpu_template": "minimal"})").status, 204) << "kiln's names still taken";
  EXPECT_EQ(json::parse(call("GET", "/machine-config").body)["kiln_cpu_template"], "minimal");
  expect_fault(call("PATCH", "/machine-config", R"({"cpu_template": "T2"})"), "static CPU template 'T2'");
  expect_fault(call("PATCH", "/machine-config", R"({"cpu_template": "host", "kiln_cpu_template": "minimal"})"), "disagree");
  expect_fault(call("PATCH", "/machine-config", R"({"kiln_cpu_template": "fast"})"),
               "machine-config.kiln_cpu_template 'fast': expected host or minimal");
  EXPECT_EQ(json::parse(call("GET", "/machine-config").body)["kiln_cpu_template"], "minimal") << "failures changed nothing";
}

TEST_F(ControllerTest, MissingDevicesAreNamedInPlainWords) {
  expect_fault(call("PUT", "/balloon", "{}"), "kiln has no balloon device yet");
  expect_fault(call("PUT", "/snapshot/create", "{}"), "kiln has no snapshots yet");
}

TEST_F(ControllerTest, DrivesArePutBeforeBootAndPatchedAfter) {
  const std::string root = R"({"drive_id": "rootfs", "path_on_host": "/r.ext4", "is_root_device": true, "is_read_only": false})";
  ASSERT_EQ(call("PUT", "/drives/rootfs", root).status, 204);
  ASSERT_EQ(call("PUT", "/drives/data", R"({"drive_id": "data", "path_on_host": "/d.img", "is_root_device": false,
                                            "is_read_only": true, "cache_type": "Unsafe", "io_engine": "Sync"})")
                .status,
            204);
  EXPECT_EQ(b.checked, (std::vector<std::string>{"rootfs", "data"})) << "each image is checked when it is PUT";
  // The same id again replaces the drive.
  ASSERT_EQ(call("PUT", "/drives/data", R"({"drive_id": "data", "path_on_host": "/e.img", "is_root_device": false})")
                .status,
            204);
  auto cfg = json::parse(call("GET", "/vm/config").body);
  ASSERT_EQ(cfg["drives"].size(), 2u);
  EXPECT_EQ(cfg["drives"][1]["path_on_host"], "/e.img");
  EXPECT_EQ(cfg["drives"][1]["cache_type"], "Writeback");
  // Mistakes change nothing.
  expect_fault(call("PUT", "/drives/other", R"({"drive_id": "other", "path_on_host": "/o", "is_root_device": true})"),
               "only one drive can be the root");
  expect_fault(call("PUT", "/drives/x", R"({"drive_id": "y", "path_on_host": "/o", "is_root_device": false})"),
               "is not the path's 'x'");
  b.drive_result = plain_error("path_on_host /gone: no such file");
  expect_fault(call("PUT", "/drives/gone", R"({"drive_id": "gone", "path_on_host": "/gone", "is_root_device": false})"),
               "no such file");
  expect_fault(call("PATCH", "/drives/rootfs", R"({"drive_id": "rootfs", "path_on_host": "/n.ext4"})"),
               "not supported before starting");
  EXPECT_EQ(json::parse(call("GET", "/vm/config").body)["drives"].size(), 2u);
  ASSERT_EQ(call("PUT", "/entropy", "{}").status, 204);
  boot();
  ASSERT_TRUE(b.started);
  EXPECT_EQ(b.started->drives.size(), 2u);
  EXPECT_TRUE(b.started->entropy);
  expect_fault(call("PUT", "/drives/rootfs", root), "not supported after starting");
  expect_fault(call("PATCH", "/drives/nope", R"({"drive_id": "nope", "path_on_host": "/n"})"), "no such drive");
  expect_fault(call("PATCH", "/drives/rootfs", R"({"drive_id": "rootfs", "path_on_host": "/n", "rate_limiter": {}})"),
               "rate limiters");
  ASSERT_EQ(call("PATCH", "/drives/data", R"({"drive_id": "data", "path_on_host": "/bigger.img"})").status, 204);
  EXPECT_EQ(b.updated, std::vector<std::string>{"/bigger.img"});
  EXPECT_EQ(json::parse(call("GET", "/vm/config").body)["drives"][1]["path_on_host"], "/bigger.img");
}

TEST_F(ControllerTest, NetworkInterfacesAreTapsOrUserModeAndCheckedWhole) {
  ASSERT_EQ(call("PUT", "/network-interfaces/eth0",
                 R"({"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:AC:10:00:02"})")
                .status,
            204);
  ASSERT_EQ(call("PUT", "/network-interfaces/user0",
                 R"({"iface_id": "user0", "kiln_user_net": {"hostfwd": ["tcp::8080-:80"]}})")
                .status,
            204);
  auto cfg = json::parse(call("GET", "/vm/config").body);
  ASSERT_EQ(cfg["network-interfaces"].size(), 2u);
  EXPECT_EQ(cfg["network-interfaces"][0]["guest_mac"], "06:00:ac:10:00:02");
  EXPECT_EQ(cfg["network-interfaces"][1]["kiln_user_net"]["hostfwd"][0], "tcp::8080-:80");
  // Mistakes are 400s that name the field, and change nothing.
  expect_fault(call("PUT", "/network-interfaces/eth1", R"({"iface_id": "eth1", "host_dev_name": "tap1",
                                                            "rx_rate_limiter": {"bandwidth": {}}})"),
               "rate limiters are not there yet");
  expect_fault(call("PUT", "/network-interfaces/eth1", R"({"iface_id": "eth1", "host_dev_name": "tap1",
                                                            "guest_mac": "06:00:ac:10:00"})"),
               "guest_mac");
  expect_fault(call("PUT", "/network-interfaces/eth1", R"({"iface_id": "eth1", "host_dev_name": "tap0"})"),
               "both use tap tap0");
  expect_fault(call("PUT", "/network-interfaces/eth1", R"({"iface_id": "eth1"})"), "host_dev_name");
  expect_fault(call("PUT", "/network-interfaces/eth1",
                    R"({"iface_id": "eth1", "kiln_user_net": {"hostfwd": ["tcp::99999-:80"]}})"),
               "hostfwd[0]");
  expect_fault(call("PUT", "/network-interfaces/eth1", R"({"iface_id": "eth2", "host_dev_name": "tap1"})"),
               "is not the path's 'eth1'");
  expect_fault(call("PATCH", "/network-interfaces/eth0", R"({"iface_id": "eth0", "rx_rate_limiter": {}})"),
               "rate limiters");
  EXPECT_EQ(json::parse(call("GET", "/vm/config").body)["network-interfaces"].size(), 2u);
  boot();
  ASSERT_TRUE(b.started);
  EXPECT_EQ(b.started->network_interfaces.size(), 2u);
  expect_fault(call("PUT", "/network-interfaces/eth0", R"({"iface_id": "eth0", "host_dev_name": "tap0"})"),
               "not supported after starting");
}

TEST_F(ControllerTest, MmdsDataIsPutPatchedAndReadBeforeAndAfterBoot) {
  EXPECT_EQ(json::parse(call("GET", "/mmds").body), json::object());  // nothing yet
  expect_fault(call("PATCH", "/mmds", R"({"a": 1})"), "PUT /mmds before a PATCH");
  ASSERT_EQ(call("PUT", "/mmds", R"({"latest": {"meta-data": {"ami-id": "ami-1", "old": "x"}}})").status, 204);
  ASSERT_EQ(call("PATCH", "/mmds", R"({"latest": {"meta-data": {"ami-id": "ami-2", "old": null}}})").status, 204);
  EXPECT_EQ(json::parse(call("GET", "/mmds").body), json::parse(R"({"latest": {"meta-data": {"ami-id": "ami-2"}}})"));
  expect_fault(call("PUT", "/mmds", "{not json"), "not valid JSON");
  boot();
  ASSERT_EQ(call("PATCH", "/mmds", R"({"extra": "y"})").status, 204);
  EXPECT_EQ(json::parse(call("GET", "/mmds").body)["extra"], "y");
}

TEST(ControllerMmds, ABodyOverTheStoreLimitIsA400ThatChangesNothing) {
  FakeBackend b;
  Controller c(b, {}, {}, std::make_shared<mmds::DataStore>(100));
  ASSERT_EQ(c.handle({"PUT", "/mmds", R"({"k": "v"})"}).status, 204);
  const HttpResponse r = c.handle({"PUT", "/mmds", json{{"k", std::string(200, 'x')}}.dump()});
  ASSERT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("over its limit of 100"), std::string::npos) << r.body;
  EXPECT_EQ(c.handle({"PATCH", "/mmds", json{{"more", std::string(100, 'x')}}.dump()}).status, 400);
  EXPECT_EQ(json::parse(c.handle({"GET", "/mmds", ""}).body), json({{"k", "v"}}));
}

TEST_F(ControllerTest, MmdsConfigNamesInterfacesTheVmHasAndALinkLocalAddress) {
  expect_fault(call("PUT", "/mmds/config", R"({"network_interfaces": ["eth0"]})"), "no network interface 'eth0'");
  ASSERT_EQ(call("PUT", "/network-interfaces/eth0", R"({"iface_id": "eth0", "host_dev_name": "tap0"})").status, 204);
  expect_fault(call("PUT", "/mmds/config", R"({"network_interfaces": []})"), "at least one");
  expect_fault(call("PUT", "/mmds/config", R"({"version": "V1"})"), "network_interfaces is required");
  expect_fault(call("PUT", "/mmds/config", R"({"network_interfaces": ["eth0"], "version": "V3"})"), "V1 or V2");
  expect_fault(call("PUT", "/mmds/config", R"({"network_interfaces": ["eth0"], "ipv4_address": "10.0.0.1"})"),
               "link-local");
  expect_fault(call("PUT", "/mmds/config", R"({"network_interfaces": ["eth0"], "ipv4_address": "169.254.0.9"})"),
               "link-local");
  expect_fault(call("PUT", "/mmds/config", R"({"network_interfaces": ["eth0"], "ipv4_address": "nope"})"),
               "not an IPv4 address");
  EXPECT_FALSE(json::parse(call("GET", "/vm/config").body).contains("mmds-config"));  // nothing changed
  ASSERT_EQ(call("PUT", "/mmds/config", R"({"network_interfaces": ["eth0"], "version": "V2"})").status, 204);
  const json cfg = json::parse(call("GET", "/vm/config").body)["mmds-config"];
  EXPECT_EQ(cfg["version"], "V2");
  EXPECT_EQ(cfg["ipv4_address"], "169.254.169.254");
  boot();
  ASSERT_TRUE(b.started && b.started->mmds);
  EXPECT_EQ(b.started->mmds->network_interfaces, std::vector<std::string>{"eth0"});
  expect_fault(call("PUT", "/mmds/config", R"({"network_interfaces": ["eth0"]})"), "not supported after starting");
}

TEST_F(ControllerTest, VsockIsPutBeforeBootAndChecked) {
  const std::string path = ::testing::TempDir() + "kiln-ctl-vsock-" + std::to_string(::getpid()) + ".sock";
  expect_fault(call("PUT", "/vsock", R"({"guest_cid": 2, "uds_path": "/tmp/x.sock"})"), "guest_cid 2");
  expect_fault(call("PUT", "/vsock", R"({"guest_cid": -5, "uds_path": "/tmp/x.sock"})"), "whole number");
  expect_fault(call("PUT", "/vsock", R"({"uds_path": "/tmp/x.sock"})"), "guest_cid is required");
  expect_fault(call("PUT", "/vsock", R"({"guest_cid": 3})"), "uds_path is required");
  expect_fault(call("PUT", "/vsock", R"({"guest_cid": 3, "uds_path": "/"})"), "already exists");
  EXPECT_FALSE(json::parse(call("GET", "/vm/config").body).contains("vsock"));
  ASSERT_EQ(call("PUT", "/vsock", json{{"guest_cid", 3}, {"uds_path", path}, {"vsock_id", "vsock0"}}.dump()).status, 204);
  const json cfg = json::parse(call("GET", "/vm/config").body)["vsock"];
  EXPECT_EQ(cfg["guest_cid"], 3);
  EXPECT_EQ(cfg["uds_path"], path);
  boot();
  ASSERT_TRUE(b.started && b.started->vsock);
  EXPECT_EQ(b.started->vsock->uds_path, path);
  expect_fault(call("PUT", "/vsock", json{{"guest_cid", 4}, {"uds_path", path}}.dump()), "not supported after starting");
}

TEST_F(ControllerTest, MetricsOnceThenFlush) {
  ASSERT_EQ(call("PUT", "/metrics", R"({"metrics_path": "/tmp/m"})").status, 204);
  expect_fault(call("PUT", "/metrics", R"({"metrics_path": "/tmp/m2"})"), "once");
  ASSERT_EQ(call("PUT", "/actions", R"({"action_type": "FlushMetrics"})").status, 204);
  EXPECT_EQ(b.flushes, 1);
  EXPECT_EQ(json::parse(call("GET", "/vm/config").body)["metrics"]["metrics_path"], "/tmp/m");
}

}  // namespace
}  // namespace kiln::api
