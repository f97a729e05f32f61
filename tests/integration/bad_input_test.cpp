// A user's bad input: a clear one-line error, a non-zero status, and no VM started.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "support/guests.h"
#include "support/kiln_process.h"
#include "support/net.h"
#include "support/scratch.h"

namespace kiln::test {
namespace {

using namespace std::chrono_literals;

std::string write_file(const std::string& name, const std::string& data) {
  const std::string path = scratch_path(name);
  std::ofstream(path, std::ios::binary) << data;
  return path;
}

std::string read_prefix(const std::string& path, std::size_t n) {
  std::ifstream f(path, std::ios::binary);
  std::string s(n, '\0');
  f.read(s.data(), static_cast<std::streamsize>(n));
  s.resize(static_cast<std::size_t>(f.gcount()));
  return s;
}

// Runs kiln and checks the failure: status 1, one line on stderr containing `needle`, no guest.
void expect_rejected(std::vector<std::string> args, const std::string& needle) {
  KilnProcess k(kiln_run(std::move(args)));
  auto st = k.wait_exit(30s);
  ASSERT_TRUE(st);
  EXPECT_EQ(*st, 1);
  const std::string err = k.errors();
  EXPECT_NE(err.find(needle), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << "one line:\n" << err;
  EXPECT_TRUE(k.output().empty()) << "no guest output: " << k.output();
}

TEST(BadInput, NotAKernel) {
  expect_rejected({"--kernel", write_file("not-a-kernel", "#!/bin/sh\necho hello\n")}, "not a Linux kernel");
}

TEST(BadInput, MissingFile) { expect_rejected({"--kernel", "/nonexistent/vmlinuz"}, "--kernel"); }

TEST(BadInput, MissingInitrd) {
  expect_rejected({"--kernel", KILN_TINY_GUEST, "--initrd", "/nonexistent/initrd"}, "--initrd");
}

TEST(BadInput, EmptyKernelFile) { expect_rejected({"--kernel", write_file("empty", "")}, "is empty"); }

TEST(BadInput, TruncatedBzImage) {
  const auto g = guest_files();
  KILN_NEED_GUEST("the test kernel's bzImage", g.test_bzimage);
  expect_rejected({"--kernel", write_file("truncated-bzImage", read_prefix(g.test_bzimage, 300'000))}, "truncated");
}

TEST(BadInput, TruncatedElf) {
  expect_rejected({"--kernel", write_file("truncated-elf", read_prefix(KILN_TINY_GUEST, 200))}, "truncated");
}

TEST(BadInput, InitrdTooBigForMemory) {
  const std::string big = write_file("big-initrd", std::string(40 << 20, 'x'));
  expect_rejected({"--kernel", KILN_TINY_GUEST, "--initrd", big, "--memory", "32M"}, "--memory");
}

TEST(BadInput, MemoryTooSmallForTheKernel) {
  const auto g = guest_files();
  KILN_NEED_GUEST("the test kernel's vmlinux", g.test_vmlinux);
  expect_rejected({"--kernel", g.test_vmlinux, "--memory", "16M"}, "--memory");
}

TEST(BadInput, CommandLineTooLong) {
  const auto g = guest_files();
  KILN_NEED_GUEST("the test kernel's bzImage", g.test_bzimage);
  expect_rejected({"--kernel", g.test_bzimage, "--cmdline", std::string(5000, 'a')}, "--cmdline");
}

TEST(BadInput, BadFlagValues) {
  expect_rejected({"--kernel", KILN_TINY_GUEST, "--cpus", "0"}, "--cpus");
  expect_rejected({"--kernel", KILN_TINY_GUEST, "--memory", "ten"}, "--memory");
  expect_rejected({"--kernel", KILN_TINY_GUEST, "--serial", "udp:1"}, "--serial");
  expect_rejected({"--kernel", KILN_TINY_GUEST, "--cpus", "100000"}, "--cpus");
}

TEST(BadInput, MoreVcpusThanKiln) {
  expect_rejected({"--kernel", KILN_TINY_GUEST, "--cpus", "256"}, "--cpus");
}

TEST(BadInput, UnknownCpuTemplate) {
  expect_rejected({"--kernel", KILN_TINY_GUEST, "--cpu-template", "skylake"}, "--cpu-template 'skylake': expected host or minimal");
}

TEST(BadInput, MalformedCpuConfigFiles) {
  expect_rejected({"--kernel", KILN_TINY_GUEST, "--cpu-config", "/nonexistent/cpu.json"}, "--cpu-config: cannot open");
  expect_rejected({"--kernel", KILN_TINY_GUEST, "--cpu-config", write_file("cpu-bad.json", "{\"cpuid_modifiers\": [")},
                  "not valid JSON");
  expect_rejected({"--kernel", KILN_TINY_GUEST, "--cpu-config", write_file("cpu-unknown.json", R"({"cpuid_modifers": []})")},
                  "unknown field 'cpuid_modifers'");
  expect_rejected({"--kernel", KILN_TINY_GUEST, "--cpu-config",
                   write_file("cpu-reg.json", R"({"cpuid_modifiers": [{"leaf": "0x1", "modifiers": [{"register": "exx", "bitmap": "0b1"}]}]})")},
                  "cpu-config.cpuid_modifiers[0].modifiers[0].register: expected eax, ebx, ecx or edx");
  // Not a string: an error like the one above, not an exception (found by vm_config_fuzz).
  expect_rejected({"--kernel", KILN_TINY_GUEST, "--cpu-config",
                   write_file("cpu-regnum.json", R"({"cpuid_modifiers": [{"leaf": 1, "modifiers": [{"register": 5, "bitmap": "0b1"}]}]})")},
                  "register: expected eax, ebx, ecx or edx, got 5");
  expect_rejected({"--kernel", KILN_TINY_GUEST, "--cpu-config",
                   write_file("cpu-bits.json", R"({"msr_modifiers": [{"addr": "0x10a", "bitmap": "0b12"}]})")},
                  "cpu-config.msr_modifiers[0].bitmap '0b12': '2' is not 0, 1 or x");
  expect_rejected({"--kernel", KILN_TINY_GUEST, "--cpu-config",
                   write_file("cpu-leaf.json", R"({"cpuid_modifiers": [{"leaf": "one", "modifiers": []}]})")},
                  "cpu-config.cpuid_modifiers[0].leaf: expected a number");
}

// Disks: each mistake is one line naming the disk, before KVM is touched.
TEST(BadInput, Disks) {
  const std::string img = write_file("disk-ok.img", std::string(4096, '\0'));
  expect_rejected({"--kernel", KILN_TINY_GUEST, "--disk", "path=/nonexistent/disk.img"},
                  "drive disk0: path /nonexistent/disk.img: no such file");
  expect_rejected({"--kernel", KILN_TINY_GUEST, "--disk", "path=" + ::testing::TempDir()}, "is a directory");
  expect_rejected({"--kernel", KILN_TINY_GUEST, "--disk", "path=" + img + ",root", "--disk", "path=" + img + ",id=b,root"},
                  "only one drive can be the root");
  expect_rejected({"--kernel", KILN_TINY_GUEST, "--disk", "path=" + img + ",size=1G"}, "unknown key 'size'");
  expect_rejected({"--kernel", KILN_TINY_GUEST, "--disk", "path=" + img + ",id=data", "--disk", "path=" + img + ",id=data"},
                  "the id 'data' is given twice");
  expect_rejected({"--kernel", KILN_TINY_GUEST, "--transport", "virtio"}, "--transport");
}

TEST(BadInput, NetworkInterfaces) {
  const std::string k = KILN_TINY_GUEST;
  expect_rejected({"--kernel", k, "--net", "tap=kiln-nothere"}, "there is no network interface 'kiln-nothere'");
  expect_rejected({"--kernel", k, "--net", "user,hostfwd=tcp::8080:80"}, "no '-' between the host and guest sides");
  expect_rejected({"--kernel", k, "--net", "user,hostfwd=tcp::70000-:80"}, "'70000' is not a host port");
  expect_rejected({"--kernel", k, "--net", "user,mac=06:00:ac:10:00"}, "is not a MAC address");
  expect_rejected({"--kernel", k, "--net", "user,mac=01:00:5e:00:00:01"}, "multicast");
  expect_rejected({"--kernel", k, "--net", "bridge=br0"}, "unknown key 'bridge'");
  expect_rejected({"--kernel", k, "--net", "mac=06:00:ac:10:00:02"}, "say which network");
  expect_rejected({"--kernel", k, "--net", "tap=t0,hostfwd=tcp::1-:2"}, "hostfwd is for user-mode networking");
  expect_rejected({"--kernel", k, "--net", "user,id=a", "--net", "user,id=a"}, "the iface_id 'a' is given twice");
  // A forward to a host port that is taken: the error names the port.
  TcpListener taken;
  ASSERT_NE(taken.port(), 0);
  const std::string port = std::to_string(taken.port());
  expect_rejected({"--kernel", k, "--net", "user,hostfwd=tcp:127.0.0.1:" + port + "-:80"},
                  "cannot listen on host port " + port);
}

TEST(BadInput, MetadataService) {
  const std::string k = KILN_TINY_GUEST;
  expect_rejected({"--kernel", k, "--mmds", "version=V2"}, "add --net");
  expect_rejected({"--kernel", k, "--net", "user", "--mmds", "version=V3"}, "expected V1 or V2");
  expect_rejected({"--kernel", k, "--net", "user", "--mmds", "ipv4=10.0.2.9"}, "needs a link-local address");
  expect_rejected({"--kernel", k, "--net", "user", "--mmds", "iface=eth7"}, "no network interface 'eth7'");
  expect_rejected({"--kernel", k, "--net", "user", "--mmds", "version=V2", "--metadata", write_file("bad.json", "{oops")},
                  "--metadata");
  // Data over the store's bound: refused whole, before the VM starts.
  expect_rejected({"--kernel", k, "--net", "user", "--mmds", "version=V2", "--mmds-size-limit", "16", "--metadata",
                   write_file("big.json", R"({"latest": {"meta-data": "more than sixteen bytes"}})")},
                  "over its limit of 16");
}

TEST(BadInput, Vsock) {
  const std::string k = KILN_TINY_GUEST;
  const std::string sock = ::testing::TempDir() + "kiln-bad-vsock-" + std::to_string(::getpid()) + ".sock";
  expect_rejected({"--kernel", k, "--vsock", "cid=2,uds=" + sock}, "guest_cid 2");
  expect_rejected({"--kernel", k, "--vsock", "cid=x,uds=" + sock}, "is not a number");
  expect_rejected({"--kernel", k, "--vsock", "cid=3"}, "give cid=N");
  expect_rejected({"--kernel", k, "--vsock", "cid=3,uds=" + std::string(120, 'a')}, "1 to 107 characters");
  // A path that exists (a file here; a stale socket too) is not taken over.
  const std::string existing = write_file("vsock-exists", "");
  expect_rejected({"--kernel", k, "--vsock", "cid=3,uds=" + existing}, "already exists");
}

TEST(BadInput, ATapKilnMayNotOpen) {
  // A tap owned by another user, opened by an unprivileged kiln: it says whose it is and how to fix it.
  const char* ip = "/usr/sbin/ip";
  if (::geteuid() != 0 || ::access(ip, X_OK) != 0) GTEST_SKIP() << "needs root and iproute2 to make a tap";
  const std::string ns = "kiln-bad-" + std::to_string(::getpid());
  int status = 0;
  const std::string out = run_command(std::string(ip) + " netns add " + ns + " && " + ip + " -n " + ns +
                                          " tuntap add kt1 mode tap user root 2>&1",
                                      status);
  if (status != 0) {
    run_command(std::string(ip) + " netns del " + ns + " 2>/dev/null", status);
    GTEST_SKIP() << "cannot make a tap here: " << out;
  }
  auto args = kiln_run({"--kernel", KILN_TINY_GUEST, "--net", "tap=kt1"});
  // As nobody (65534), inside the namespace: setpriv drops root before kiln runs.
  args.insert(args.begin(), {ip, "netns", "exec", ns, "/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                             "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"});
  KilnProcess k(args);
  auto st = k.wait_exit(30s);
  run_command(std::string(ip) + " netns del " + ns + " 2>/dev/null", status);
  ASSERT_TRUE(st);
  EXPECT_EQ(*st, 1) << k.errors();
  // Where /dev/net/tun is 0666 the tap's owner is what stops it; elsewhere the device itself.
  const std::string err = k.errors();
  EXPECT_TRUE(err.find("tap kt1: kiln may not open it") != std::string::npos ||
              err.find("tap kt1: kiln may not open /dev/net/tun") != std::string::npos)
      << err;
}

TEST(BadInput, ADiskAnotherKilnHolds) {
  if (!have_kvm()) GTEST_SKIP() << "needs read/write access to /dev/kvm (the first kiln runs a guest)";
  const std::string img = write_file("disk-held.img", std::string(1 << 20, '\0'));
  KilnProcess first(kiln_run({"--kernel", KILN_TINY_GUEST, "--memory", "64M", "--cmdline", "echo", "--disk", "path=" + img}));
  ASSERT_TRUE(first.wait_for_output("tiny: echo ready", 30s)) << first.errors();
  expect_rejected({"--kernel", KILN_TINY_GUEST, "--disk", "path=" + img}, "the image is in use");
  expect_rejected({"--kernel", KILN_TINY_GUEST, "--disk", "path=" + img + ",readonly"}, "the image is in use");
  first.terminate();
  ASSERT_TRUE(first.wait_exit(30s));
}

TEST(BadInput, AWritableDiskOnAFileThatCannotBeWritten) {
  const std::string img = write_file("disk-immutable.img", std::string(4096, '\0'));
  // Immutable: not even root may open it for writing.
  const int fd = ::open(img.c_str(), O_RDONLY);
  int flags = 0;
  const bool immutable = fd >= 0 && ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 &&
                         (flags |= FS_IMMUTABLE_FL, ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0);
  if (!immutable) {
    if (fd >= 0) ::close(fd);
    GTEST_SKIP() << "cannot make a file immutable here (needs CAP_LINUX_IMMUTABLE and a file system with the flag)";
  }
  expect_rejected({"--kernel", KILN_TINY_GUEST, "--disk", "path=" + img}, "cannot be opened for writing");
  flags &= ~FS_IMMUTABLE_FL;
  ::ioctl(fd, FS_IOC_SETFLAGS, &flags);
  ::close(fd);
}

}  // namespace
}  // namespace kiln::test
