// The test kernel (Debian linux-source-6.1 + the project's config and syscall fix) with the busybox
// initramfs: each test is one boot, with its own script chosen by kiln.script= on the cmdline.
#include <sys/socket.h>
#include <unistd.h>
#include <zstd.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include "support/curl.h"
#include "support/guests.h"
#include "support/kiln_process.h"
#include "support/net.h"
#include "support/scratch.h"

namespace kiln::test {
namespace {

using namespace std::chrono_literals;
constexpr auto kBoot = 720s;  // 60-110 s to init on nested PVM alone; up to ~6 min beside the stock-kernel boots

class TestKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_kvm()) GTEST_SKIP() << "needs read/write access to /dev/kvm";
    g_ = guest_files();
    for (auto [what, path] : {std::pair{"the test kernel", g_.test_vmlinux}, {"its bzImage", g_.test_bzimage},
                              {"the test initramfs", g_.initramfs}}) {
      KILN_NEED_GUEST(what, path);
    }
  }
  std::vector<std::string> args(const std::string& kernel, const std::string& script, const std::string& extra = "") {
    return kiln_run({"--kernel", kernel, "--initrd", g_.initramfs, "--memory", "128M", "--cmdline",
                     "console=ttyS0 panic=1 kiln.script=" + script + " " + extra});
  }
  static void expect_all_steps_ok(const std::string& out) {
    EXPECT_NE(out.find("KILN-SUMMARY: 0 failed"), std::string::npos) << out;
    EXPECT_EQ(out.find("FAIL"), std::string::npos) << out;
    for (const char* step : {"uname", "proc", "fork-exec", "pipes", "tmpfs-files", "signals", "rtc-date", "devport"})
      EXPECT_NE(out.find(std::string("KILN-RESULT: ") + step + " ok"), std::string::npos) << step;
  }
  GuestFiles g_;
};

TEST_F(TestKernel, PvhBootRunsUserSpaceAndAShellTypedIntoOverAPty) {
  KilnProcess k(args(g_.test_vmlinux, "smoke-shell", "kiln.status=42"), KilnProcess::Console::kPty);
  ASSERT_TRUE(k.wait_for_output("KILN-READY", kBoot)) << k.output() << k.errors();
  expect_all_steps_ok(k.output());
  // Input typed on the console reaches the guest's shell, and its answer comes back.
  k.send("echo kiln-$((6*7))-ok\r");
  EXPECT_TRUE(k.wait_for_output("kiln-42-ok", 60s)) << k.output();
  k.send("exit\r");
  auto st = k.wait_exit(60s);
  ASSERT_TRUE(st) << k.output();
  EXPECT_EQ(*st, 42) << "the status the script chose\n" << k.errors();
}

// The bzImage as it is: its own decompressor runs in the guest (on nested-PVM hosts kiln would
// otherwise unpack it; the Machine cases below boot it that way).
TEST_F(TestKernel, BzImageBootRunsTheSmokeScript) {
  auto a = args(g_.test_bzimage, "smoke", "kiln.status=43");
  a.insert(a.end(), {"--unpack-kernel", "off"});
  KilnProcess k(a);
  auto st = k.wait_exit(kBoot);
  ASSERT_TRUE(st) << k.output() << k.errors();
  EXPECT_EQ(*st, 43) << k.output() << k.errors();
  expect_all_steps_ok(k.output());
  EXPECT_EQ(k.errors().find("unpacked the bzImage"), std::string::npos) << k.errors();
}

// The whole machine as the kernel sees it: N CPUs from the ACPI MADT (or the MP table with
// acpi=off), the ACPI tables parsed without complaint, kvmclock, then an ending through the
// kernel's own paths: ACPI soft-off, the ACPI reset register, or a panic reported by pvpanic.
struct MachineCase {
  const char* name;
  int cpus;
  bool bzimage;
  const char* then;
  const char* extra;
  int status;
  const char* kiln_says;
  bool zstd_initrd = false;  // the initramfs compressed with zstd, as Debian's initramfs-tools makes it
};

// The initramfs compressed with zstd, in the test's scratch directory.
std::string zstd_copy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string plain((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string packed(ZSTD_compressBound(plain.size()), '\0');
  const std::size_t n = ZSTD_compress(packed.data(), packed.size(), plain.data(), plain.size(), 3);
  if (ZSTD_isError(n) || plain.empty()) return {};
  packed.resize(n);
  const std::string out = scratch_path("initramfs.cpio.zst");
  std::ofstream(out, std::ios::binary) << packed;
  return out;
}

void PrintTo(const MachineCase& c, std::ostream* os) { *os << c.name; }

class Machine : public TestKernel, public ::testing::WithParamInterface<MachineCase> {};

TEST_P(Machine, BootsWithAllCpusAndEndsThroughTheKernelsOwnPath) {
  const MachineCase& c = GetParam();
  const std::string initrd = c.zstd_initrd ? zstd_copy(g_.initramfs) : g_.initramfs;
  ASSERT_FALSE(initrd.empty()) << "compressing " << g_.initramfs;
  KilnProcess k(kiln_run({"--kernel", c.bzimage ? g_.test_bzimage : g_.test_vmlinux, "--initrd", initrd,
                          "--memory", "128M", "--cpus", std::to_string(c.cpus), "--cmdline",
                          std::string("console=ttyS0 panic=1 kiln.script=machine kiln.then=") + c.then + " " + c.extra}));
  auto st = k.wait_exit(kBoot);
  ASSERT_TRUE(st) << k.output() << k.errors();
  const std::string out = k.output();
  EXPECT_EQ(*st, c.status) << out << k.errors();
  EXPECT_NE(k.errors().find(c.kiln_says), std::string::npos) << k.errors();
  // A bzImage is unpacked by kiln on nested-PVM hosts only (--unpack-kernel auto), and boots the same.
  EXPECT_EQ(k.errors().find("unpacked the bzImage's kernel on the host") != std::string::npos,
            c.bzimage && nested_pvm_host())
      << k.errors();
  EXPECT_EQ(k.errors().find("on the host (0.0 MiB"), std::string::npos) << "the vmlinux's size\n" << k.errors();
  // A zstd initramfs: unpacked by kiln into plain cpio on nested-PVM hosts only (the same setting);
  // elsewhere the guest's kernel unpacks it. The guest runs the same script either way.
  EXPECT_EQ(k.errors().find("unpacked the initrd on the host") != std::string::npos,
            c.zstd_initrd && nested_pvm_host())
      << k.errors();
  EXPECT_NE(out.find(smp_brought_up_line(c.cpus)), std::string::npos) << out;
  // On nested PVM, glibc in the guest is told to keep to SSE (the kernel runs with noxsave).
  EXPECT_EQ(out.find("KILN-GLIBC-TUNABLES: glibc.cpu.hwcaps=-AVX,-AVX2,") != std::string::npos, nested_pvm_host())
      << out;
  // Serial consoles end lines with CR LF.
  EXPECT_NE(out.find("KILN-NPROC: " + std::to_string(c.cpus) + "\r\n"), std::string::npos) << out;
  // kvmclock is there and gives the TSC frequency, so the kernel skips calibrating; Linux then
  // prefers the TSC itself where the host says it is stable.
  EXPECT_NE(out.find("clocksource: kvm-clock: mask"), std::string::npos) << out;
  EXPECT_NE(out.find("Calibrating delay loop (skipped)"), std::string::npos) << out;
  EXPECT_TRUE(out.find("KILN-CLOCKSOURCE: kvm-clock") != std::string::npos ||
              out.find("KILN-CLOCKSOURCE: tsc") != std::string::npos) << out;
  // One package of cores, as the CPUID topology and the APIC ids say.
  for (int i = 0; i < c.cpus; ++i) {
    const std::string cpu = "KILN-CPU: processor=" + std::to_string(i) + " physical_id=0 core_id=" +
                            std::to_string(i) + " apicid=" + std::to_string(i) + "\r\n";
    EXPECT_NE(out.find(cpu), std::string::npos) << cpu << " missing from:\n" << out;
  }
  if (c.cpus > 1) {
    EXPECT_NE(out.find("smpboot: Max logical packages: 1"), std::string::npos) << out;
    // The script's sysrq l: the other CPUs took an NMI and came back from it.
    for (int i = 1; i < c.cpus; ++i)
      EXPECT_NE(out.find("NMI backtrace for cpu " + std::to_string(i)), std::string::npos) << out;
  }
  EXPECT_EQ(out.find("rtc_cmos: probe of rtc_cmos failed"), std::string::npos) << out;
  for (const char* bad : kFirmwareComplaints) EXPECT_EQ(out.find(bad), std::string::npos) << bad << " in:\n" << out;
  if (std::string(c.extra).find("acpi=off") == std::string::npos) {
    EXPECT_NE(out.find("ACPI: XSDT 0x00000000000E"), std::string::npos) << out;
    EXPECT_NE(out.find("ACPI: Using IOAPIC for interrupt routing"), std::string::npos) << out;
    // /sys/firmware/acpi/tables lists what the kernel took.
    const auto at = out.find("KILN-ACPI-TABLES:");
    ASSERT_NE(at, std::string::npos) << out;
    const std::string tables = out.substr(at, out.find('\n', at) - at);
    for (const char* table : {" APIC ", " DSDT ", " FACP "}) EXPECT_NE(tables.find(table), std::string::npos) << tables;
  } else {
    EXPECT_NE(out.find("Intel MultiProcessor Specification v1.4"), std::string::npos) << out;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cpus, Machine,
    ::testing::Values(
        MachineCase{"OneCpuPowerOff", 1, false, "poweroff", "", 0, "guest powered off: ACPI soft-off"},
        MachineCase{"TwoCpusBzImageZstdInitrdReboot", 2, true, "reboot", "", 2,
                    "reset through the ACPI reset register", true},
        MachineCase{"FourCpusPanic", 4, false, "panic", "", 4, "guest kernel panicked: reported through pvpanic"},
        // Without ACPI the kernel halts after "Power down": kiln takes the console's word for it.
        MachineCase{"TwoCpusFromTheMpTable", 2, false, "poweroff", "acpi=off", 0,
                    "guest powered off: the kernel's console said 'Power down'"}),
    [](const auto& p) { return std::string(p.param.name); });

// Virtio through the guest's own drivers, one boot per transport: the root file system on a
// virtio-blk disk (mounted by the initramfs, which hands over to it), a file written, fsynced and
// read back uncached; the disk's serial (GET_ID); fstrim (DISCARD); a read-only second disk that
// refuses writes; /dev/hwrng from virtio-rng; the interrupts the transport should use (MSI-X for
// virtio-pci). Then on the host: the root image passes e2fsck -fn, the file in it has the hash the
// guest printed, and the read-only image did not change.
class Virtio : public TestKernel, public ::testing::WithParamInterface<std::string> {};

TEST_P(Virtio, RootDiskReadOnlyDiskAndEntropy) {
  const std::string transport = GetParam();
  KILN_NEED_GUEST("the root file system tree", g_.rootfs_tree);
  const std::string root = scratch_path("root.ext4"), ro = scratch_path("ro.ext4"), ro_tree = scratch_path("ro");
  std::filesystem::create_directory(ro_tree);
  { std::ofstream(ro_tree + "/hello.txt") << "kiln read-only disk\n"; }
  ASSERT_TRUE(make_ext4_image(root, "64M", g_.rootfs_tree));
  ASSERT_TRUE(make_ext4_image(ro, "8M", ro_tree));
  const std::string ro_before = sha256_file(ro);
  KilnProcess k(kiln_run({"--kernel", g_.test_vmlinux, "--initrd", g_.initramfs, "--memory", "128M", "--transport",
                          transport, "--disk", "path=" + root + ",root,serial=kiln-root-01", "--disk",
                          "path=" + ro + ",readonly", "--rng", "--cmdline",
                          "console=ttyS0 panic=1 kiln.script=virtio kiln.serial=kiln-root-01 kiln.transport=" +
                              transport}));
  auto st = k.wait_exit(kBoot);
  ASSERT_TRUE(st) << k.output() << k.errors();
  EXPECT_EQ(*st, 0) << k.output() << k.errors();
  const std::string out = k.output();
  EXPECT_NE(out.find("KILN-INIT: root /dev/vda (rw) mounted"), std::string::npos) << out;
  EXPECT_NE(out.find("KILN-SUMMARY: 0 failed"), std::string::npos) << out;
  EXPECT_EQ(out.find("FAIL"), std::string::npos) << out;
  for (const char* step : {"root-on-vda", "vda-serial", "write-fsync", "read-back-uncached", "fstrim", "ro-disk-flag",
                           "ro-disk-read", "ro-disk-refuses-writes", "ro-fs-refuses-writes", "hwrng-is-virtio",
                           "hwrng-bytes", transport == "pci" ? "interrupts-msix" : "interrupts-line"})
    EXPECT_NE(out.find(std::string("KILN-RESULT: ") + step + " ok"), std::string::npos) << step;
  const auto at = out.find("KILN-SHA: ");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string guest_sha = out.substr(at + 10, 64);

  int status = 0;
  const std::string fsck = run_command("e2fsck -fn '" + root + "'", status);
  EXPECT_EQ(status, 0) << fsck;
  const std::string dumped = scratch_path("written.bin");
  run_command("debugfs -R 'dump /written.bin " + dumped + "' '" + root + "'", status);
  EXPECT_EQ(sha256_file(dumped), guest_sha) << "the file in the image is not what the guest wrote";
  EXPECT_EQ(std::filesystem::file_size(dumped), 1048576u);
  EXPECT_EQ(sha256_file(ro), ro_before) << "the read-only image changed";
}

INSTANTIATE_TEST_SUITE_P(Transports, Virtio, ::testing::Values("mmio", "pci"),
                         [](const auto& p) { return p.param == "pci" ? std::string("Pci") : std::string("Mmio"); });

TEST_F(TestKernel, DefaultGuestOnItsRootDiskKeepsWhatTheShellWrote) {
  // The main command's guest (scripts/run.sh): the root file system on a virtio-blk disk, user-mode networking, the
  // machine summary, then a shell. A file written there and `exit` end the VM with status 0, and
  // the file is in the disk image (the next run sees it).
  KILN_NEED_GUEST("the root file system tree", g_.rootfs_tree);
  const std::string disk = scratch_path("default-root.ext4");
  ASSERT_TRUE(make_ext4_image(disk, "64M", g_.rootfs_tree));
  const std::string port = std::to_string(free_port());
  KilnProcess k(kiln_run({"--kernel", g_.test_vmlinux, "--initrd", g_.initramfs, "--memory", "128M", "--disk",
                          "path=" + disk + ",root", "--rng", "--net", "user,hostfwd=tcp:127.0.0.1:" + port + "-:80",
                          "--cmdline", "console=ttyS0 panic=1 kiln.http_port=" + port}),
                KilnProcess::Console::kPty);
  ASSERT_TRUE(k.wait_for_output("Type commands;", kBoot)) << k.output() << k.errors();
  const std::string out = k.output();
  EXPECT_NE(out.find("kiln test guest: Linux 6.1"), std::string::npos) << out;
  EXPECT_NE(out.find("1 CPU(s)"), std::string::npos) << out;
  EXPECT_NE(out.find("KILN-INIT: root /dev/vda (rw) mounted"), std::string::npos) << out;
  // Its web server, through the forward run.sh gives it.
  EXPECT_NE(out.find("network: eth0 10.0.2.15 (user-mode networking; the host is 10.0.2.2); this guest's "
                     "http://127.0.0.1:" + port + "/ on the host"),
            std::string::npos)
      << out;
  int http_status = 0;
  const std::string page = run_command("curl -sS --max-time 60 http://127.0.0.1:" + port + "/", http_status);
  EXPECT_EQ(page, "hello from the kiln guest\n") << http_status;
  k.send("echo kept-$((6*7)) > /kept.txt\r");
  k.send("exit\r");
  auto st = k.wait_exit(120s);
  ASSERT_TRUE(st) << k.output();
  EXPECT_EQ(*st, 0) << k.output() << k.errors();
  int status = 0;
  const std::string kept = run_command("debugfs -R 'cat /kept.txt' '" + disk + "' 2>/dev/null", status);
  EXPECT_NE(kept.find("kept-42"), std::string::npos) << kept;
  const std::string fsck = run_command("e2fsck -fn '" + disk + "'", status);
  EXPECT_EQ(status, 0) << fsck;
}

namespace {

// Serves `payload` to every connection on ADDR:port (an HTTP/1.0 answer to whatever was asked),
// until destroyed.
class PayloadServer {
 public:
  explicit PayloadServer(std::string payload, const char* addr = "127.0.0.1")
      : payload_(std::move(payload)), listener_(addr) {
    EXPECT_NE(listener_.port(), 0);
    port = listener_.port();
    thread_ = std::thread([this] {
      for (;;) {
        const int c = ::accept(listener_.fd(), nullptr, nullptr);
        if (c < 0) return;
        std::string req;
        char buf[1024];
        while (req.find("\r\n\r\n") == std::string::npos) {
          const ssize_t n = ::read(c, buf, sizeof buf);
          if (n <= 0) break;
          req.append(buf, static_cast<std::size_t>(n));
        }
        const std::string head = "HTTP/1.0 200 OK\r\nContent-Length: " + std::to_string(payload_.size()) + "\r\n\r\n";
        std::string out = head + payload_;
        for (std::size_t at = 0; at < out.size();) {
          const ssize_t n = ::write(c, out.data() + at, out.size() - at);
          if (n <= 0) break;
          at += static_cast<std::size_t>(n);
        }
        ::close(c);
      }
    });
  }
  ~PayloadServer() {
    listener_.shutdown();
    thread_.join();
  }
  std::uint16_t port = 0;

 private:
  std::string payload_;
  TcpListener listener_;
  std::thread thread_;
};

std::string value_after(const std::string& out, const std::string& marker) {
  const auto at = out.find(marker);
  if (at == std::string::npos) return {};
  const auto end = out.find_first_of("\r\n", at + marker.size());
  return out.substr(at + marker.size(), end - at - marker.size());
}

}  // namespace

// Networking through the guest's own virtio-net drivers, in one boot (guest/initramfs/scripts/net.sh).
// User-mode networking (libslirp): the guest's address from slirp's DHCP; 8 MiB from a server on
// the host's loopback to the guest (wget through the gateway 10.0.2.2), then the guest's httpd
// serves 8 MiB + 64 KiB that the host fetches through a hostfwd; hashes match. A tap in a network
// namespace the test makes (kiln runs inside it; where no namespace can be made, this part is
// left out and said so): the same 8 MiB each way over it, with the tap's checksum and
// segmentation offloads (the guest's driver sees frames larger than the 1500-byte MTU both ways).
// The metadata service's V2 token dance (--mmds version=V2, --metadata): a token by PUT, a GET
// without it refused, GETs with it answered in IMDS and JSON form. vsock both ways with the
// guest's kiln-vsock helper: 2 MiB over a guest connection to the host's port 5001 (a Unix socket
// at PATH_5001), then 2 MiB over the host's connection to the guest's port 5002 (CONNECT through
// PATH). Last, host peers that stop reading (a hostfwd connection, a tap connection, a vsock
// connection, each with 32 MiB behind it) while the guest floods raw frames through both
// interfaces for 5 s each: kiln's own memory (outside guest RAM) stays under kOwnRssBoundMiB.
TEST_F(TestKernel, NetworkingTapMetadataServiceAndVsockInOneBoot) {
  constexpr std::uint64_t kMemoryMiB = 256, kOwnRssBoundMiB = 32;
  std::string payload(8u << 20, '\0');
  std::uint64_t x = 0x9e3779b97f4a7c15ull;
  for (char& c : payload) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<char>(x);
  }
  {
    std::ofstream(scratch_path("from-host.bin"), std::ios::binary) << payload;
  }
  const std::string sha_from_host = sha256_file(scratch_path("from-host.bin"));
  // The tap's side: 192.168.150.1/24 in a namespace of the test's; kiln and every host peer of
  // its user-mode networking run inside it too.
  TapNamespace ns("ktap1", "192.168.150.1/24");
  if (!ns.ok()) std::cerr << "the tap part is left out: " << ns.why() << "\n";
  auto inside = [&](const std::function<void()>& fn) { ns.ok() ? ns.run_inside(fn) : fn(); };
  auto shell = [&](const std::string& command) { return ns.ok() ? ns.shell(command) : command; };
  std::unique_ptr<PayloadServer> server, tap_server;
  inside([&] {
    server = std::make_unique<PayloadServer>(payload);
    if (ns.ok()) tap_server = std::make_unique<PayloadServer>(payload, "192.168.150.1");
  });
  const std::uint16_t fwd = free_port(), done = free_port(), stall = free_port(), end = free_port();
  const std::string mac = "06:00:ac:10:00:02", tap_mac = "06:00:ac:10:00:03";
  {
    std::ofstream(scratch_path("metadata.json"))
        << R"({"latest": {"meta-data": {"ami-id": "ami-kiln-e2e", "network": {"mac": "06:00:ac:10:00:02"}}}})";
  }
  // vsock: the host's port 5001 takes what the guest sends.
  const std::string uds = scratch_path("v.sock");
  Fd vsock_listener = unix_listen(uds + "_5001", 900);
  ASSERT_TRUE(vsock_listener);
  std::string from_guest;
  std::thread vsock_host([&] {
    Fd c = accept_from(vsock_listener, 900);
    if (c) from_guest = read_from(c, 4u << 20);
  });
  struct Join {
    std::thread& t;
    Fd& l;
    ~Join() {
      ::shutdown(l.get(), SHUT_RDWR);
      if (t.joinable()) t.join();
    }
  } join{vsock_host, vsock_listener};
  // Tells the guest's `nc -l` waiting behind a forward to go on: it closes its side (its input is
  // empty) and ends when the host closes.
  auto knock = [](std::uint16_t port) {
    Fd c = tcp_connect("127.0.0.1", port, 120);
    EXPECT_TRUE(c) << port;
    EXPECT_EQ(read_from(c, 1), "") << port;
  };
  auto forward = [](std::uint16_t host, int guest) {
    return "hostfwd=tcp:127.0.0.1:" + std::to_string(host) + "-:" + std::to_string(guest);
  };
  std::vector<std::string> args = {
      "--kernel", g_.test_vmlinux, "--initrd", g_.initramfs, "--memory", std::to_string(kMemoryMiB) + "M", "--net",
      "user," + forward(fwd, 8080) + "," + forward(done, 8081) + "," + forward(stall, 8082) + "," + forward(end, 8084) +
          ",mac=" + mac,
      "--mmds", "version=V2,iface=eth0", "--metadata", scratch_path("metadata.json"), "--vsock", "cid=3,uds=" + uds};
  std::string cmdline = "console=ttyS0 panic=1 kiln.script=net kiln.mmds=1 kiln.vsock=1 kiln.stall=1 kiln.hostport=" +
                        std::to_string(server->port) + " kiln.mac=" + mac + " kiln.mtu=65520";
  if (ns.ok()) {
    args.insert(args.end(), {"--net", "tap=" + ns.tap() + ",mac=" + tap_mac});
    cmdline += " kiln.tap=192.168.150.1 kiln.tapmac=" + tap_mac + " kiln.tapport=" + std::to_string(tap_server->port);
  }
  args.insert(args.end(), {"--cmdline", cmdline});
  args = kiln_run(args);
  KilnProcess k(ns.ok() ? ns.exec(args) : args);
  ASSERT_TRUE(k.wait_for_output("KILN-VSOCK-LISTENING", kBoot)) << k.output() << k.errors();
  vsock_host.join();
  EXPECT_EQ(from_guest.size(), 2u << 20);
  EXPECT_TRUE(from_guest == payload.substr(0, 2u << 20)) << "what the guest sent over vsock";
  {
    // The host connects to the guest's port 5002 and sends 2 MiB of its own.
    Fd host = unix_connect(uds, 300);
    ASSERT_TRUE(host);
    ASSERT_TRUE(write_all(host, "CONNECT 5002\n"));
    const std::string ok = read_from(host, 64, true);
    EXPECT_TRUE(ok.starts_with("OK ")) << ok;
    const std::string to_guest = payload.substr(3u << 20, 2u << 20);
    {
      std::ofstream(scratch_path("to-guest.bin"), std::ios::binary) << to_guest;
    }
    ASSERT_TRUE(write_all(host, to_guest));
    ::shutdown(host.get(), SHUT_WR);
    EXPECT_EQ(read_from(host, 1), "") << "the guest closes once it has it all";
  }
  ASSERT_TRUE(k.wait_for_output("KILN-NET-READY", kBoot)) << k.output() << k.errors();
  const std::string out = k.output();
  EXPECT_EQ(value_after(out, "KILN-DHCP: "), "10.0.2.15/24 router 10.0.2.2 dns 10.0.2.3") << out;
  EXPECT_EQ(value_after(out, "KILN-VSOCK-SHA-IN: "), sha256_file(scratch_path("to-guest.bin"))) << out;
  for (const char* step : {"dhcp", "vsock-to-host", "vsock-from-host", "mmds-wants-a-token"})
    EXPECT_NE(out.find(std::string("KILN-RESULT: ") + step + " ok"), std::string::npos) << step << "\n" << out;
  EXPECT_EQ(value_after(out, "KILN-MMDS-TOKEN-LENGTH: "), "64") << out;
  EXPECT_EQ(value_after(out, "KILN-MMDS-AMI: "), "ami-kiln-e2e") << out;
  EXPECT_EQ(value_after(out, "KILN-MMDS-LIST: "), "ami-id network/") << out;
  EXPECT_EQ(value_after(out, "KILN-MMDS-JSON: "), R"({"mac":"06:00:ac:10:00:02"})") << out;
  EXPECT_EQ(value_after(out, "KILN-SHA-FROM-HOST: "), sha_from_host) << out;
  if (ns.ok()) {
    EXPECT_EQ(value_after(out, "KILN-SHA-OVER-TAP: "), sha_from_host) << out;
  }
  // Offloads: on user-mode networking checksums only, both ways (kiln completes the guest's and
  // marks slirp's valid); on the tap checksums and segmentation both ways, and they were used end
  // to end: at the tap's 1500-byte MTU, the frames of each 8 MiB transfer average more than the
  // largest 1514-byte frame, which only frames of two segments or more can make, and the hashes
  // match. (How many segments the sender's TCP puts in one frame depends on its timing: averages
  // of 1567 to 2834 bytes to the guest, 2794 to 3170 from it, were seen here.)
  auto feature = [&](const char* which, std::size_t bit) {
    const std::string bits = value_after(out, which);
    return bits.size() > bit ? bits.substr(bit, 1) : "?";
  };
  for (std::size_t bit : {0, 1}) EXPECT_EQ(feature("KILN-FEATURES-USER: ", bit), "1") << bit << "\n" << out;
  for (std::size_t bit : {7, 8, 11, 12}) EXPECT_EQ(feature("KILN-FEATURES-USER: ", bit), "0") << bit << "\n" << out;
  struct Count {
    std::uint64_t bytes = 0, frames = 0;
  };
  auto count = [&](const std::string& way) {
    return ns.ok() ? Count{ns.counter(way + "_bytes"), ns.counter(way + "_packets")} : Count{};
  };
  const Count to_guest = count("tx"), from_guest_before = count("rx");
  if (ns.ok()) {
    for (std::size_t bit : {0, 1, 7, 8, 11, 12})
      EXPECT_EQ(feature("KILN-FEATURES-TAP: ", bit), "1") << bit << "\n" << out;
    ASSERT_GT(to_guest.frames, 0u);
    std::cerr << "the tap's frames to the guest (its wget): " << to_guest.bytes / to_guest.frames << " bytes on average\n";
    EXPECT_GT(to_guest.bytes / to_guest.frames, 1514u);
  }
  // The guest's file, through the hostfwd and over the tap.
  std::vector<std::pair<std::string, std::string>> fetches = {{"127.0.0.1:" + std::to_string(fwd), "to-host.bin"}};
  if (ns.ok()) fetches.emplace_back("192.168.150.2:8080", "over-tap.bin");
  for (const auto& [where, file] : fetches) {
    int status = 0;
    const std::string got = scratch_path(file);
    const std::string curl_out =
        run_command(shell("curl -sS --max-time 300 -o " + got + " http://" + where + "/to-host.bin"), status);
    EXPECT_EQ(status, 0) << where << ": " << curl_out;
    EXPECT_EQ(std::filesystem::file_size(got), payload.size() + 65536) << where;
    EXPECT_EQ(sha256_file(got), value_after(out, "KILN-SHA-TO-HOST: ")) << where;
  }
  if (ns.ok()) {
    const Count after = count("rx");
    const std::uint64_t frames = after.frames - from_guest_before.frames;
    ASSERT_GT(frames, 0u);
    const std::uint64_t avg = (after.bytes - from_guest_before.bytes) / frames;
    std::cerr << "the tap's frames from the guest (the host's fetch): " << avg << " bytes on average\n";
    EXPECT_GT(avg, 1514u);
  }
  // Host peers that connect and never read: through the hostfwd, over the tap, over vsock.
  std::vector<Fd> stalled;
  inside([&] {
    for (const auto& [addr, p] : std::vector<std::pair<const char*, std::uint16_t>>{{"127.0.0.1", stall},
                                                                                   {"192.168.150.2", 8083}}) {
      if (!ns.ok() && p == 8083) continue;
      stalled.push_back(tcp_connect(addr, p));
      EXPECT_TRUE(stalled.back()) << addr << ":" << p;
    }
  });
  {
    Fd v = unix_connect(uds, 60);
    ASSERT_TRUE(v);
    ASSERT_TRUE(write_all(v, "CONNECT 5003\n"));
    EXPECT_TRUE(read_from(v, 64, true).starts_with("OK "));
    stalled.push_back(std::move(v));
  }
  const std::uint64_t rss_before = own_rss_kib(k.pid(), kMemoryMiB);
  // A connection to 8081 starts the floods (5 s through each interface).
  inside([&] { knock(done); });
  ASSERT_TRUE(k.wait_for_output("KILN-FLOOD-DONE", 300s)) << k.output() << k.errors();
  const std::uint64_t rss_after = own_rss_kib(k.pid(), kMemoryMiB);
  std::cerr << "kiln's own memory: " << rss_before / 1024 << " MiB before the stalls' floods, " << rss_after / 1024
            << " MiB after\n";
  EXPECT_GT(rss_after, 0u);
  EXPECT_LT(rss_after, kOwnRssBoundMiB << 10) << "kiln's RSS outside guest RAM, KiB";
  stalled.clear();
  inside([&] { knock(end); });
  auto st = k.wait_exit(120s);
  ASSERT_TRUE(st) << k.output() << k.errors();
  EXPECT_EQ(*st, 0) << k.output() << k.errors();
  const std::string all = k.output();
  EXPECT_NE(all.find("KILN-SUMMARY: 0 failed"), std::string::npos) << all;
  EXPECT_NE(value_after(all, "KILN-FLOOD-USER: flood: "), "0 frames") << all;
  if (ns.ok()) {
    EXPECT_NE(value_after(all, "KILN-FLOOD-TAP: flood: "), "0 frames") << all;
  }
  const std::string errs = k.errors();
  EXPECT_NE(errs.find("network interface eth0: virtio-net on user-mode networking, MAC " + mac), std::string::npos) << errs;
  EXPECT_NE(errs.find("metadata service (V2) at 169.254.169.254:80 on eth0\n"), std::string::npos) << errs;
}

// Firecracker's getting-started sequence over the API boots the test kernel from a root drive (on
// virtio-pci with INTx interrupts); a pause of 5 s stops
// the guest's counter (printed every 100 ms) and resume goes on with no gap and no repeat; GET
// /vm/config returns what was PUT; SendCtrlAltDel reaches the kernel's keyboard driver, which
// reboots through the i8042 (reboot=k), and kiln ends with the reset status.
TEST_F(TestKernel, ApiGettingStartedPauseResumeAndCtrlAltDel) {
  using nlohmann::json;
  const std::string sock = ::testing::TempDir() + "kiln-e2e-api-" + std::to_string(::getpid()) + ".sock";
  std::filesystem::remove(sock);
  KilnProcess k({KILN_BINARY, "--api-sock", sock});
  ASSERT_TRUE(wait_for_socket(sock, 10000)) << k.errors();
  const json boot = {{"kernel_image_path", g_.test_vmlinux},
                     {"initrd_path", g_.initramfs},
                     {"boot_args", "console=ttyS0 panic=1 reboot=k pci=nomsi kiln.script=counter kiln.count=100000"}};
  // The root drive on virtio-pci, with MSI off in the guest (pci=nomsi): its interrupts are INTA.
  const json machine = {{"vcpu_count", 2}, {"mem_size_mib", 128}, {"kiln_virtio_transport", "pci"}};
  ASSERT_EQ(curl(sock, "PUT", "/boot-source", boot.dump()).status, 204);
  ASSERT_EQ(curl(sock, "PUT", "/machine-config", machine.dump()).status, 204);
  // The guide's next step: the root file system on a drive. A path that is not there first: a 400
  // naming it, and nothing kept.
  KILN_NEED_GUEST("the root file system tree", g_.rootfs_tree);
  const std::string rootfs = scratch_path("rootfs.ext4");
  ASSERT_TRUE(make_ext4_image(rootfs, "64M", g_.rootfs_tree));
  auto bad = curl(sock, "PUT", "/drives/rootfs",
                  R"({"drive_id": "rootfs", "path_on_host": "/nonexistent/rootfs.ext4", "is_root_device": true, "is_read_only": false})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("/nonexistent/rootfs.ext4: no such file"), std::string::npos) << bad.body;
  const json drive = {{"drive_id", "rootfs"}, {"path_on_host", rootfs}, {"is_root_device", true}, {"is_read_only", false}};
  ASSERT_EQ(curl(sock, "PUT", "/drives/rootfs", drive.dump()).status, 204);
  ASSERT_EQ(curl(sock, "PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
  ASSERT_TRUE(k.wait_for_output("KILN-INIT: root /dev/vda (rw) mounted", kBoot)) << k.output() << k.errors();
  ASSERT_TRUE(k.wait_for_output("KILN-COUNT: 10\r\n", kBoot)) << k.output() << k.errors();

  auto counts = [&] {
    std::vector<long> v;
    std::istringstream in(k.output());
    std::string line;
    while (std::getline(in, line))
      if (line.starts_with("KILN-COUNT: ")) v.push_back(std::stol(line.substr(12)));
    return v;
  };
  ASSERT_EQ(curl(sock, "PATCH", "/vm", R"({"state": "Paused"})").status, 204);
  // The 204 comes once every vCPU has stopped; what the guest printed before it may still be on
  // its way through the pipe.
  ASSERT_TRUE(k.wait_for_quiet_output(500ms, 30s));
  const auto at_pause = counts().size();
  // A running guest prints a line every 100 ms: in 5 s it would print ~50.
  std::this_thread::sleep_for(5s);
  EXPECT_EQ(counts().size(), at_pause) << "the guest printed while paused";
  EXPECT_EQ(json::parse(curl(sock, "GET", "/").body)["state"], "Paused");
  ASSERT_EQ(curl(sock, "PATCH", "/vm", R"({"state": "Resumed"})").status, 204);
  ASSERT_TRUE(k.wait_for_output("KILN-COUNT: " + std::to_string(at_pause + 10) + "\r\n", 600s)) << k.errors();
  const auto v = counts();
  for (std::size_t i = 0; i < v.size(); ++i) ASSERT_EQ(v[i], static_cast<long>(i)) << "a gap or a repeat at line " << i;

  const json vm = json::parse(curl(sock, "GET", "/vm/config").body);
  EXPECT_EQ(vm["boot-source"], boot);
  EXPECT_EQ(vm["machine-config"]["vcpu_count"], 2);
  EXPECT_EQ(vm["machine-config"]["mem_size_mib"], 128);
  EXPECT_EQ(vm["machine-config"]["kiln_virtio_transport"], "pci");
  ASSERT_EQ(vm["drives"].size(), 1u);
  EXPECT_EQ(vm["drives"][0]["path_on_host"], rootfs);

  ASSERT_EQ(curl(sock, "PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
  auto st = k.wait_exit(600s);
  ASSERT_TRUE(st) << k.output() << k.errors();
  EXPECT_EQ(*st, 2) << "reset: " << k.errors();
  EXPECT_NE(k.output().find("reboot: Restarting system"), std::string::npos) << k.output();
  EXPECT_NE(k.errors().find("reset through the i8042"), std::string::npos) << k.errors();
}

}  // namespace
}  // namespace kiln::test
