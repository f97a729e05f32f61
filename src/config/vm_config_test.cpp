#include "config/vm_config.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(MemSize, UnitsAndErrors) {
  EXPECT_EQ(*parse_mem_size_mib("512"), 512u);
  EXPECT_EQ(*parse_mem_size_mib("512M"), 512u);
  EXPECT_EQ(*parse_mem_size_mib("512MiB"), 512u);
  EXPECT_EQ(*parse_mem_size_mib("2G"), 2048u);
  EXPECT_EQ(*parse_mem_size_mib("1t"), 1024u * 1024);
  EXPECT_EQ(*parse_mem_size_mib("2048K"), 2u);
  EXPECT_FALSE(parse_mem_size_mib("1000K"));
  EXPECT_FALSE(parse_mem_size_mib("lots"));
  EXPECT_FALSE(parse_mem_size_mib("12X"));
  EXPECT_FALSE(parse_mem_size_mib("-5"));
  EXPECT_FALSE(parse_mem_size_mib("99999999999999999999G"));
  EXPECT_FALSE(parse_mem_size_mib("5000T"));
  auto e = parse_mem_size_mib("12X");
  EXPECT_NE(e.error().message().find("--memory"), std::string::npos);
}

TEST(Serial, Modes) {
  EXPECT_EQ(parse_serial("stdio")->mode, SerialConfig::Mode::kStdio);
  EXPECT_EQ(parse_serial("none")->mode, SerialConfig::Mode::kNone);
  auto f = parse_serial("file:/tmp/console.log");
  EXPECT_EQ(f->mode, SerialConfig::Mode::kFile);
  EXPECT_EQ(f->path, "/tmp/console.log");
  EXPECT_FALSE(parse_serial("file:"));
  EXPECT_FALSE(parse_serial("tcp:1234"));
}

TEST(Validate, NamesTheFlag) {
  VmConfig c;
  EXPECT_NE(validate(c).error().message().find("--kernel"), std::string::npos);
  c.boot_source.kernel_image_path = "/k";
  EXPECT_TRUE(validate(c));
  c.machine_config.vcpu_count = 0;
  EXPECT_NE(validate(c).error().message().find("vcpu_count 0 (--cpus)"), std::string::npos);
  c.machine_config.vcpu_count = 2;
  c.machine_config.mem_size_mib = 1;
  EXPECT_NE(validate(c).error().message().find("--memory"), std::string::npos);
}

TEST(ConfigJson, RoundTripsInFirecrackersShape) {
  VmConfig c;
  c.boot_source = {"/vmlinux", "/initrd", "console=ttyS0"};
  c.machine_config.vcpu_count = 2;
  c.machine_config.mem_size_mib = 512;
  c.kiln.serial = {SerialConfig::Mode::kFile, "/tmp/x"};
  c.kiln.boot_timer = true;
  c.machine_config.transport = MachineConfig::Transport::kPci;
  c.drives.push_back({.drive_id = "rootfs", .path_on_host = "/r.ext4", .is_root_device = true});
  c.drives.push_back({.drive_id = "data", .path_on_host = "/d.img", .is_read_only = true,
                      .cache_type = DriveConfig::Cache::kUnsafe, .io_engine = DriveConfig::IoEngine::kSync,
                      .serial = "DATA1"});
  c.entropy = EntropyConfig{};
  auto j = to_json(c);
  EXPECT_EQ(j["boot-source"]["kernel_image_path"], "/vmlinux");
  EXPECT_EQ(j["machine-config"]["vcpu_count"], 2);
  EXPECT_EQ(j["machine-config"]["mem_size_mib"], 512);
  EXPECT_TRUE(j["drives"].is_array());
  auto back = vm_config_from_json(j);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->boot_source.initrd_path, "/initrd");
  EXPECT_EQ(back->kiln.serial.path, "/tmp/x");
  EXPECT_TRUE(back->kiln.boot_timer);
  EXPECT_EQ(back->drives, c.drives);
  EXPECT_TRUE(back->entropy);
  EXPECT_EQ(back->machine_config.transport, MachineConfig::Transport::kPci);
  EXPECT_EQ(j["machine-config"]["kiln_virtio_transport"], "pci");
  EXPECT_EQ(to_json(*back), j);
}

TEST(ConfigJson, UnknownFieldsAndWrongTypesAreNamed) {
  auto j = nlohmann::json::parse(R"({"boot-source":{"kernel_image_path":"/k","bogus":1}})");
  auto r = vm_config_from_json(j);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("'bogus'"), std::string::npos);
  j = nlohmann::json::parse(R"({"boot-source":{"kernel_image_path":"/k"},"machine-config":{"vcpu_count":"two"}})");
  r = vm_config_from_json(j);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("machine-config.vcpu_count"), std::string::npos);
  j = nlohmann::json::parse(R"({"machine-config":{"vcpu_count":1}})");
  EXPECT_FALSE(vm_config_from_json(j));
  j = nlohmann::json::parse(R"({"boot-source":{"kernel_image_path":"/k"},"drives":[{"drive_id":"rootfs"}]})");
  r = vm_config_from_json(j);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("drives"), std::string::npos);
}

}  // namespace
}  // namespace kiln
