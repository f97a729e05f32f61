// Each resource's parser on its own, as the API's bodies give them.
#include <gtest/gtest.h>

#include "config/vm_config.h"

namespace kiln {
namespace {

using nlohmann::json;

std::string error_of(const auto& r) { return r ? std::string() : r.error().message(); }

TEST(BootSourceJson, KernelRequiredOptionalFieldsMayBeNullAndRoundTrip) {
  EXPECT_NE(error_of(boot_source_from_json(json::object())).find("kernel_image_path is required"), std::string::npos);
  EXPECT_NE(error_of(boot_source_from_json({{"kernel_image_path", ""}})).find("empty"), std::string::npos);
  EXPECT_NE(error_of(boot_source_from_json({{"kernel_image_path", 7}})).find("kernel_image_path: wrong type"),
            std::string::npos);
  auto b = boot_source_from_json({{"kernel_image_path", "/k"}, {"initrd_path", nullptr}, {"boot_args", nullptr}});
  ASSERT_TRUE(b);
  EXPECT_FALSE(b->initrd_path);
  EXPECT_FALSE(b->boot_args);
  const json full = {{"kernel_image_path", "/k"}, {"initrd_path", "/i"}, {"boot_args", "console=ttyS0"}};
  EXPECT_EQ(to_json(*boot_source_from_json(full)), full);
}

TEST(MachineConfigJson, PutNeedsTheWholePatchKeepsTheRestAndLimitsAreChecked) {
  MachineConfig base;
  base.vcpu_count = 4;
  EXPECT_NE(error_of(machine_config_from_json({{"vcpu_count", 2}}, base, true)).find("mem_size_mib is required"),
            std::string::npos);
  auto patched = machine_config_from_json({{"mem_size_mib", 512}}, base, false);
  ASSERT_TRUE(patched);
  EXPECT_EQ(patched->vcpu_count, 4u) << "PATCH keeps what it leaves out";
  auto put = machine_config_from_json({{"vcpu_count", 2}, {"mem_size_mib", 128}}, base, true);
  ASSERT_TRUE(put);
  EXPECT_EQ(put->cpu_template, x86::BuiltinCpuTemplate::kHost) << "PUT resets what it leaves out";
  EXPECT_NE(error_of(machine_config_from_json({{"vcpu_count", 0}}, base, false)).find("vcpu_count 0"), std::string::npos);
  EXPECT_NE(error_of(machine_config_from_json({{"vcpu_count", 256}}, base, false)).find("between 1 and 255"),
            std::string::npos);
  EXPECT_NE(error_of(machine_config_from_json({{"mem_size_mib", 8}}, base, false)).find("mem_size_mib 8"),
            std::string::npos);
  EXPECT_NE(error_of(machine_config_from_json({{"smt", true}}, base, false)).find("SMT"), std::string::npos);
  EXPECT_NE(error_of(machine_config_from_json({{"huge_pages", "2M"}}, base, false)).find("huge_pages"),
            std::string::npos);
  EXPECT_TRUE(machine_config_from_json({{"huge_pages", "None"}}, base, false));
  EXPECT_NE(error_of(machine_config_from_json({{"vcpus", 2}}, base, false)).find("unknown field 'vcpus'"),
            std::string::npos);
  base.cpu_template = x86::BuiltinCpuTemplate::kMinimal;
  EXPECT_EQ(*machine_config_from_json(to_json(base), MachineConfig{}, true), base) << "its own JSON reads back";
}

TEST(LoggerAndMetricsJson, LevelsAnyCaseAndWhatIsRequired) {
  auto l = logger_config_from_json({{"log_path", "/tmp/l"}, {"level", "wArNiNg"}, {"show_level", true}});
  ASSERT_TRUE(l);
  EXPECT_EQ(log_level_from_name(l->level), spdlog::level::warn);
  EXPECT_NE(error_of(logger_config_from_json({{"level", "Loud"}})).find("Loud"), std::string::npos);
  EXPECT_NE(error_of(logger_config_from_json({{"module", "api"}})).find("logger.module"), std::string::npos);
  EXPECT_TRUE(logger_config_from_json({{"module", nullptr}}));
  EXPECT_EQ(to_json(*l)["level"], "wArNiNg");
  EXPECT_NE(error_of(metrics_config_from_json(json::object())).find("metrics_path is required"), std::string::npos);
  EXPECT_NE(error_of(metrics_config_from_json({{"metrics_path", ""}})).find("empty"), std::string::npos);
  EXPECT_EQ(to_json(*metrics_config_from_json({{"metrics_path", "/tmp/m"}})), (json{{"metrics_path", "/tmp/m"}}));
}

TEST(KilnSettingsJson, SerialBootTimerAndHostArguments) {
  auto k = kiln_config_from_json({{"serial", "file:/tmp/s"}, {"boot_timer", true}, {"host_kernel_args", false}});
  ASSERT_TRUE(k);
  EXPECT_EQ(k->serial.mode, SerialConfig::Mode::kFile);
  EXPECT_EQ(k->serial.path, "/tmp/s");
  EXPECT_EQ(to_json(*k), (json{{"serial", "file:/tmp/s"}, {"boot_timer", true}, {"host_kernel_args", false},
                              {"syscall_fix", true}, {"unpack_kernel", "auto"}, {"timer_floor", "auto"}}));
  auto off = kiln_config_from_json({{"syscall_fix", false}});
  ASSERT_TRUE(off);
  EXPECT_FALSE(off->syscall_fix);
  EXPECT_NE(error_of(kiln_config_from_json({{"syscall_fix", "no"}})).find("syscall_fix"), std::string::npos);
  EXPECT_NE(error_of(kiln_config_from_json({{"serial", "tcp:1"}})).find("--serial 'tcp:1'"), std::string::npos);
  EXPECT_NE(error_of(kiln_config_from_json({{"colour", true}})).find("unknown field 'colour'"), std::string::npos);
}

TEST(KilnSettingsJson, TheTimerFloorIsAutoOffOrMicrosecondsAsANumberOrText) {
  auto n = kiln_config_from_json({{"timer_floor", 5000}});
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(n->timer_floor.mode, TimerFloor::Mode::kOn);
  EXPECT_EQ(n->timer_floor.us, 5000u);
  EXPECT_EQ(to_json(*n)["timer_floor"], "5000");
  EXPECT_EQ(kiln_config_from_json({{"timer_floor", "5000"}})->timer_floor.us, 5000u);
  EXPECT_EQ(kiln_config_from_json({{"timer_floor", "off"}})->timer_floor.mode, TimerFloor::Mode::kOff);
  EXPECT_EQ(kiln_config_from_json(json::object())->timer_floor.mode, TimerFloor::Mode::kAuto);
  EXPECT_NE(error_of(kiln_config_from_json({{"timer_floor", 50}})).find("kiln.timer_floor '50': expected auto"),
            std::string::npos);
  EXPECT_NE(error_of(kiln_config_from_json({{"timer_floor", -1}})).find("kiln.timer_floor"), std::string::npos);
  EXPECT_NE(error_of(kiln_config_from_json({{"timer_floor", true}})).find("kiln.timer_floor"), std::string::npos);
}

TEST(KilnSettingsJson, AProfileWithItsRateAndSymbolsRoundTripsAndBadOnesNameTheField) {
  const json p = {{"path", "/tmp/prof.txt"}, {"hz", 250}, {"symbols", "/boot/System.map"}, {"top", 500}};
  auto k = kiln_config_from_json({{"profile", p}});
  ASSERT_TRUE(k) << k.error().message();
  ASSERT_TRUE(k->profile);
  EXPECT_EQ(k->profile->hz, 250u);
  EXPECT_EQ(k->profile->top, 500u);
  EXPECT_EQ(kiln_config_from_json({{"profile", {{"path", "/p"}}}})->profile->top, 40u) << "40 unless asked";
  EXPECT_NE(error_of(kiln_config_from_json({{"profile", {{"path", "/tmp/p"}, {"top", 0}}}}))
                .find("kiln.profile.top 0: give how many functions the report lists, from 1 to 100000"),
            std::string::npos);
  EXPECT_EQ(to_json(*k)["profile"], p);
  EXPECT_FALSE(kiln_config_from_json(json::object())->profile) << "no profile unless asked";
  EXPECT_NE(error_of(kiln_config_from_json({{"profile", {{"path", "/tmp/p"}, {"hz", 0}}}}))
                .find("kiln.profile.hz 0: give a sampling rate from 1 to 10000"),
            std::string::npos);
  EXPECT_NE(error_of(kiln_config_from_json({{"profile", {{"hz", 100}}}})).find("kiln.profile.path"), std::string::npos);
  EXPECT_NE(error_of(kiln_config_from_json({{"profile", {{"path", "/p"}, {"rate", 1}}}})).find("unknown field 'rate'"),
            std::string::npos);
}

TEST(CpuConfigJson, NumbersAsTextOrNumbersAndWhatKilnRefuses) {
  auto t = cpu_template_from_json(
      {{"cpuid_modifiers", {{{"leaf", "0x7"}, {"subleaf", 0}, {"flags", 1},
                             {"modifiers", {{{"register", "ebx"}, {"bitmap", "0b1x0"}}}}}}},
       {"msr_modifiers", {{{"addr", 0x10a}, {"bitmap", "0b0"}}}}},
      "cpu-config");
  ASSERT_TRUE(t) << t.error().message();
  ASSERT_EQ(t->cpuid.size(), 1u);
  EXPECT_EQ(t->cpuid[0].leaf, 7u);
  EXPECT_EQ(t->cpuid[0].reg, x86::CpuidRegister::kEbx);
  ASSERT_EQ(t->msrs.size(), 1u);
  EXPECT_EQ(t->msrs[0].addr, 0x10au);
  EXPECT_NE(error_of(cpu_template_from_json({{"cpuid_modifiers", {{{"leaf", 1}, {"modifiers", {{{"register", "esp"},
                                                                                                  {"bitmap", "0b1"}}}}}}}},
                                            "cpu-config"))
                .find("expected eax, ebx, ecx or edx"),
            std::string::npos);
  EXPECT_NE(error_of(cpu_template_from_json({{"reg_modifiers", {1}}}, "cpu-config")).find("aarch64"), std::string::npos);
  EXPECT_NE(error_of(cpu_template_from_json({{"kvm_capabilities", {"!56"}}}, "cpu-config")).find("kvm_capabilities"),
            std::string::npos);
  EXPECT_NE(error_of(cpu_template_from_json({{"msr_modifiers", {{{"addr", "0x1ffffffff"}, {"bitmap", "0b1"}}}}},
                                            "cpu-config"))
                .find("does not fit in 32 bits"),
            std::string::npos);
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

TEST(DriveConfigJson, FirecrackersFieldsAndKilnsSafeDefaults) {
  auto d = drive_config_from_json(nlohmann::json::parse(R"({"drive_id": "rootfs", "path_on_host": "/r.ext4",
                                                             "is_root_device": true, "is_read_only": false})"),
                                  "PUT /drives/rootfs");
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->cache_type, DriveConfig::Cache::kWriteback) << "a flush is a flush unless the user says otherwise";
  EXPECT_EQ(d->io_engine, DriveConfig::IoEngine::kAsync);
  EXPECT_EQ(root_drive_args(*d), "root=/dev/vda rw");
  d->partuuid = "1234-01";
  d->is_read_only = true;
  EXPECT_EQ(root_drive_args(*d), "root=PARTUUID=1234-01 ro");
  auto back = drive_config_from_json(to_json(*d), "x");
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, *d);
}

TEST(DriveConfigJson, MistakesNameTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"path_on_host": "/a", "is_root_device": false})", "drive_id is required"},
      {R"({"drive_id": "a", "is_root_device": false})", "path_on_host is required"},
      {R"({"drive_id": "a", "path_on_host": "/a"})", "is_root_device is required"},
      {R"({"drive_id": "a", "path_on_host": "/a", "is_root_device": false, "cache_type": "None"})",
       "cache_type 'None': expected Writeback or Unsafe"},
      {R"({"drive_id": "a", "path_on_host": "/a", "is_root_device": false, "io_engine": "Uring"})",
       "io_engine 'Uring'"},
      {R"({"drive_id": "a", "path_on_host": "/a", "is_root_device": false, "rate_limiter": {}})",
       "rate limiters are not there yet"},
      {R"({"drive_id": "a", "path_on_host": "/a", "is_root_device": "yes"})", "is_root_device: wrong type"},
      {R"({"drive_id": "a b", "path_on_host": "/a", "is_root_device": false})", "only letters, digits"},
      {R"({"drive_id": "a", "path_on_host": "/a", "is_root_device": false, "colour": 1})", "unknown field"},
  };
  for (const auto& [body, want] : cases) {
    auto d = drive_config_from_json(nlohmann::json::parse(body), "drives[0]");
    ASSERT_FALSE(d) << body;
    EXPECT_NE(d.error().message().find(want), std::string::npos) << d.error().message();
  }
  EXPECT_FALSE(entropy_config_from_json(nlohmann::json::parse(R"({"rate_limiter": {"bandwidth": {}}})")));
  EXPECT_TRUE(entropy_config_from_json(nlohmann::json::object()));
}

}  // namespace
}  // namespace kiln
