// Virtio devices driven by the tiny guest's CPL3 driver (guest/tiny/virtio_driver.c), which polls
// the used ring: block I/O on each engine, a read-only disk, a broken queue and its reset, entropy,
// and durability across SIGKILL.
#include <gtest/gtest.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "integration/pattern_image.h"
#include "support/curl.h"
#include "support/guests.h"
#include "support/kiln_process.h"
#include "support/net.h"

namespace kiln::test {
namespace {

using namespace std::chrono_literals;

// Each test through each transport, and the block tests on each engine.
class Virtio : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {
 protected:
  void SetUp() override {
    if (!have_kvm()) GTEST_SKIP() << "needs read/write access to /dev/kvm";
  }
  static std::string engine() { return std::get<1>(GetParam()); }
  static std::vector<std::string> args(const std::string& test, std::vector<std::string> devices) {
    std::vector<std::string> a{"--kernel", KILN_TINY_GUEST, "--memory", "64M", "--cmdline", "virtio-" + test,
                               "--transport", std::get<0>(GetParam())};
    a.insert(a.end(), devices.begin(), devices.end());
    return kiln_run(a);
  }
};

TEST_P(Virtio, BlockReadWriteFlushGetIdDiscardAndWriteZeroes) {
  PatternImage img(1 << 20);
  KilnProcess k(args("blk-io", {"--disk", "path=" + img.path() + ",serial=tiny-serial-42,engine=" + engine()}));
  auto st = k.wait_exit(60s);
  ASSERT_TRUE(st) << k.output() << k.errors();
  EXPECT_EQ(*st, 0) << k.output() << k.errors();
  for (const char* line : {"tiny: capacity 00000800", "tiny: serial tiny-serial-42", "tiny: read ok", "tiny: write ok",
                           "tiny: flush ok", "tiny: discard ok", "tiny: write-zeroes ok",
                           "tiny: read past the end refused"})
    EXPECT_NE(k.output().find(line), std::string::npos) << line << "\n" << k.output();
  // What the guest wrote, discarded and zeroed is in the file; the sectors around it are not.
  const auto written = img.bytes(8 * 512, 4096);
  for (std::size_t i = 0; i < written.size(); ++i) ASSERT_EQ(written[i], static_cast<std::uint8_t>(0xa5 ^ i)) << i;
  EXPECT_EQ(img.bytes(16 * 512, 16 * 512), std::vector<std::uint8_t>(16 * 512, 0));
  EXPECT_EQ(img.bytes(32 * 512, 1)[0], static_cast<std::uint8_t>(32 * 7)) << "sector 32 untouched";
  EXPECT_EQ(img.bytes(7 * 512 + 511, 1)[0], static_cast<std::uint8_t>(7 * 7 + 511)) << "sector 7 untouched";
}

TEST_P(Virtio, AReadOnlyDiskRefusesWritesAndTheFileStaysTheSame) {
  PatternImage img(1 << 20);
  const std::string before = sha256_file(img.path());
  KilnProcess k(args("blk-ro", {"--disk", "path=" + img.path() + ",readonly,engine=" + engine()}));
  auto st = k.wait_exit(60s);
  ASSERT_TRUE(st) << k.errors();
  EXPECT_EQ(*st, 0) << k.output() << k.errors();
  EXPECT_NE(k.output().find("tiny: write refused"), std::string::npos) << k.output();
  EXPECT_EQ(sha256_file(img.path()), before);
}

TEST_P(Virtio, ABrokenQueueNeedsResetAndTheDeviceWorksAgainAfterAReset) {
  PatternImage img(1 << 20);
  KilnProcess k(args("blk-reset", {"--disk", "path=" + img.path() + ",engine=" + engine(), "--rng"}));
  auto st = k.wait_exit(60s);
  ASSERT_TRUE(st) << k.errors();
  EXPECT_EQ(*st, 0) << k.output() << k.errors();
  EXPECT_NE(k.output().find("tiny: needs reset"), std::string::npos) << k.output();
  // The console (another device) went on, and so did the block device once reset.
  EXPECT_NE(k.output().find("tiny: usable again after a reset"), std::string::npos) << k.output();
  EXPECT_NE(k.errors().find("longer than the queue size"), std::string::npos) << k.errors();
  EXPECT_NE(k.errors().find("DEVICE_NEEDS_RESET"), std::string::npos) << k.errors();
}

INSTANTIATE_TEST_SUITE_P(TransportsAndEngines, Virtio,
                         ::testing::Combine(::testing::Values("mmio", "pci"), ::testing::Values("uring", "sync")),
                         [](const auto& p) {
                           return std::string(std::get<0>(p.param) == "pci" ? "Pci" : "Mmio") +
                                  (std::get<1>(p.param) == "uring" ? "Uring" : "Sync");
                         });

// Per transport: entropy, and a drive resized while the VM runs.
class VirtioTransport : public ::testing::TestWithParam<std::string> {};

TEST_P(VirtioTransport, RngGivesRandomBytes) {
  if (!have_kvm()) GTEST_SKIP() << "needs read/write access to /dev/kvm";
  KilnProcess k(kiln_run({"--kernel", KILN_TINY_GUEST, "--memory", "64M", "--cmdline", "virtio-rng", "--rng",
                          "--transport", GetParam()}));
  auto st = k.wait_exit(60s);
  ASSERT_TRUE(st) << k.errors();
  EXPECT_EQ(*st, 0) << k.output() << k.errors();
  EXPECT_NE(k.output().find("tiny: random bytes"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Transports, VirtioTransport, ::testing::Values("mmio", "pci"),
                         [](const auto& p) { return p.param == "pci" ? std::string("Pci") : std::string("Mmio"); });

// PATCH /drives/{id} with a bigger image while the guest runs: the guest sees the new capacity, a
// new config generation and the config-change interrupt status.
TEST_P(VirtioTransport, ADriveGivenABiggerImageTellsTheGuest) {
  if (!have_kvm()) GTEST_SKIP() << "needs read/write access to /dev/kvm";
  PatternImage small(1 << 20), big(2 << 20);
  const std::string sock = ::testing::TempDir() + "kiln-resize-" + std::to_string(::getpid()) + ".sock";
  std::filesystem::remove(sock);
  KilnProcess k(kiln_run({"--kernel", KILN_TINY_GUEST, "--memory", "64M", "--cmdline", "virtio-blk-resize", "--disk",
                          "path=" + small.path() + ",id=data", "--transport", GetParam(), "--api-sock", sock}));
  ASSERT_TRUE(k.wait_for_output("tiny: capacity before 00000800", 30s)) << k.output() << k.errors();
  ASSERT_TRUE(wait_for_socket(sock, 10000));
  auto missing = curl(sock, "PATCH", "/drives/data", R"({"drive_id": "data", "path_on_host": "/nonexistent.img"})");
  EXPECT_EQ(missing.status, 400) << missing.body;
  auto r = curl(sock, "PATCH", "/drives/data", "{\"drive_id\": \"data\", \"path_on_host\": \"" + big.path() + "\"}");
  EXPECT_EQ(r.status, 204) << r.body;
  auto st = k.wait_exit(60s);
  ASSERT_TRUE(st) << k.output();
  EXPECT_EQ(*st, 0) << k.output() << k.errors();
  EXPECT_NE(k.output().find("tiny: capacity after 00001000"), std::string::npos) << k.output();
  EXPECT_NE(k.output().find("tiny: config change seen"), std::string::npos) << k.output();
  std::filesystem::remove(sock);
}

// virtio-net over user-mode networking: the guest's ARP request for 10.0.2.2 is answered by slirp.
TEST_P(VirtioTransport, NetArpAnsweredByUserModeNetworking) {
  if (!have_kvm()) GTEST_SKIP() << "needs read/write access to /dev/kvm";
  KilnProcess k(kiln_run({"--kernel", KILN_TINY_GUEST, "--memory", "64M", "--cmdline", "virtio-net-arp", "--net",
                          "user,mac=06:00:ac:10:00:07", "--transport", GetParam()}));
  auto st = k.wait_exit(60s);
  ASSERT_TRUE(st) << k.errors();
  EXPECT_EQ(*st, 0) << k.output() << k.errors();
  EXPECT_NE(k.output().find("tiny: arp reply from 10.0.2.2"), std::string::npos) << k.output();
}

// A guest that sends 100000 full-size frames as fast as its queue takes them and reads nothing:
// kiln stays within its bounds (the guest's frames beyond the back end's queue are dropped, the
// replies it never reads stay in slirp's bounded queue) and the network still works after.
// kiln's peak RSS with 64 MiB of guest RAM, after a guest's flood of 100000 full-size frames.
// Not under AddressSanitizer, whose shadow memory and quarantine of freed blocks (up to 256 MiB)
// are most of such a kiln's RSS.
constexpr std::uint64_t kFloodRssBoundKib = 32 * 1024;
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kCheckRss = false;
#else
constexpr bool kCheckRss = true;
#endif

TEST(VirtioNet, AFloodingGuestIsSurvivedAndTheNetworkWorksAfter) {
  if (!have_kvm()) GTEST_SKIP() << "needs read/write access to /dev/kvm";
  const std::string sock = ::testing::TempDir() + "kiln-flood-" + std::to_string(::getpid()) + ".sock";
  std::filesystem::remove(sock);
  KilnProcess k(kiln_run({"--kernel", KILN_TINY_GUEST, "--memory", "64M", "--cmdline", "virtio-net-flood 100000",
                          "--net", "user", "--api-sock", sock}));
  auto st = k.wait_exit(120s);
  ASSERT_TRUE(st) << k.errors();
  EXPECT_EQ(*st, 0) << k.output() << k.errors();
  EXPECT_NE(k.output().find("tiny: flood sent"), std::string::npos) << k.output();
  EXPECT_NE(k.output().find("tiny: arp reply after the flood"), std::string::npos) << k.output();
  // Bounded: slirp's queue to the guest holds at most 4 MiB, and what the guest sends goes into
  // slirp at once, within its TCP windows (kiln alone is ~7 MiB here).
  if (kCheckRss) {
    EXPECT_LT(k.peak_rss_kib(), kFloodRssBoundKib) << "kiln's peak RSS, KiB";
  }
  std::filesystem::remove(sock);
}

// The same over a tap: in a network namespace the test makes, a tap with 10.0.2.2/24 whose kernel
// answers the guest's ARP request (kiln runs inside the namespace).
TEST(VirtioNet, NetArpAnsweredOverATapInANetworkNamespace) {
  if (!have_kvm()) GTEST_SKIP() << "needs read/write access to /dev/kvm";
  TapNamespace ns("ktap0", "10.0.2.2/24");
  if (!ns.ok()) GTEST_SKIP() << ns.why();
  {
    KilnProcess k(ns.exec(kiln_run({"--kernel", KILN_TINY_GUEST, "--memory", "64M", "--cmdline", "virtio-net-arp",
                                    "--net", "tap=" + ns.tap() + ",mac=06:00:ac:10:00:08"})));
    auto st = k.wait_exit(60s);
    ASSERT_TRUE(st) << k.errors();
    EXPECT_EQ(*st, 0) << k.output() << k.errors();
    EXPECT_NE(k.output().find("tiny: arp reply from 10.0.2.2"), std::string::npos) << k.output();
    EXPECT_NE(k.errors().find("virtio-net on tap " + ns.tap()), std::string::npos) << k.errors();
  }
  // The metadata service on the tap: kiln answers for 169.254.169.254, an address nothing on the
  // tap's side has, and the request never reaches it (the namespace's ARP counters do not move).
  const std::uint64_t rx_before = ns.counter("rx_packets");
  KilnProcess k(ns.exec(kiln_run({"--kernel", KILN_TINY_GUEST, "--memory", "64M", "--cmdline", "virtio-net-arp-mmds",
                                  "--net", "tap=" + ns.tap() + ",mac=06:00:ac:10:00:08", "--mmds", "version=V2"})));
  auto st = k.wait_exit(60s);
  ASSERT_TRUE(st) << k.errors();
  EXPECT_EQ(*st, 0) << k.output() << k.errors();
  EXPECT_EQ(ns.counter("rx_packets"), rx_before) << "a frame reached the tap";
  EXPECT_NE(k.output().find("tiny: arp reply from 169.254.169.254"), std::string::npos) << k.output();
  EXPECT_NE(k.errors().find("metadata service (V2) at 169.254.169.254:80 on eth0"), std::string::npos) << k.errors();
  // A flood through the tap: what the tap cannot take is dropped; the ARP exchange works after it.
  KilnProcess flood(ns.exec(kiln_run({"--kernel", KILN_TINY_GUEST, "--memory", "64M", "--cmdline",
                                      "virtio-net-flood 100000", "--net", "tap=" + ns.tap()})));
  st = flood.wait_exit(120s);
  ASSERT_TRUE(st) << flood.errors();
  EXPECT_EQ(*st, 0) << flood.output() << flood.errors();
  EXPECT_NE(flood.output().find("tiny: arp reply after the flood"), std::string::npos) << flood.output();
  if (kCheckRss) {
    EXPECT_LT(flood.peak_rss_kib(), kFloodRssBoundKib) << "kiln's peak RSS, KiB";
  }
  EXPECT_GT(ns.counter("rx_packets"), rx_before + 1000) << "the flood reached the tap";
}

// virtio-vsock both ways with the tiny guest's CPL3 driver: the guest connects to the host's port
// 5000 (a Unix socket at PATH_5000 here) and they trade a line each; then the host connects to the
// guest's port 7000 through PATH ("CONNECT 7000", "OK <port>") and gets its line echoed.
TEST_P(VirtioTransport, VsockConnectionsBothWaysWithAHostProgram) {
  if (!have_kvm()) GTEST_SKIP() << "needs read/write access to /dev/kvm";
  const std::string dir = ::testing::TempDir() + "kiln-vsock-" + std::to_string(::getpid()) + "-" + GetParam();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string uds = dir + "/v.sock";
  Fd listener = unix_listen(uds + "_5000");
  ASSERT_TRUE(listener);
  std::string guest_said;
  std::thread host_side([&] {
    Fd c = accept_from(listener);
    if (!c) return;
    guest_said = read_from(c, 20);
    write_all(c, "hello from the host");
    read_from(c, 1);  // until the guest closes
  });
  KilnProcess k(kiln_run({"--kernel", KILN_TINY_GUEST, "--memory", "64M", "--cmdline", "virtio-vsock", "--transport",
                          GetParam(), "--vsock", "cid=42,uds=" + uds}));
  const bool listening = k.wait_for_output("tiny: vsock listening", 60s);
  host_side.join();
  ASSERT_TRUE(listening) << k.output() << k.errors();
  EXPECT_EQ(guest_said, "hello from the guest");
  Fd host = unix_connect(uds);
  ASSERT_TRUE(host);
  ASSERT_TRUE(write_all(host, "CONNECT 7000\n"));
  const std::string ok = read_from(host, 64, true);
  EXPECT_TRUE(ok.starts_with("OK ") && ok.ends_with("\n")) << ok;
  ASSERT_TRUE(write_all(host, "ping from the host"));
  EXPECT_EQ(read_from(host, 24), "echo: ping from the host");
  host.reset();
  auto st = k.wait_exit(60s);
  ASSERT_TRUE(st) << k.output() << k.errors();
  EXPECT_EQ(*st, 0) << k.output() << k.errors();
  for (const char* line : {"tiny: vsock cid 0000002a", "tiny: vsock got hello from the host",
                           "tiny: vsock guest connection closed", "tiny: vsock host connection closed"})
    EXPECT_NE(k.output().find(line), std::string::npos) << line << "\n" << k.output();
  EXPECT_FALSE(std::filesystem::exists(uds)) << "kiln removes its socket";
  std::filesystem::remove_all(dir);
}

TEST(VirtioRngAbsent, TheGuestFindsNoDevice) {
  if (!have_kvm()) GTEST_SKIP() << "needs read/write access to /dev/kvm";
  KilnProcess k(kiln_run({"--kernel", KILN_TINY_GUEST, "--memory", "64M", "--cmdline", "virtio-rng"}));
  auto st = k.wait_exit(60s);
  ASSERT_TRUE(st) << k.errors();
  EXPECT_EQ(*st, 39) << k.output();
}

}  // namespace
}  // namespace kiln::test
