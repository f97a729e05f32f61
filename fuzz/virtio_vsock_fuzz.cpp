// virtio-vsock fed by a hostile driver and a host side that acts on the input's word: records of
// 12 bytes, each a packet from the guest (op, ports, flags, the credit it claims, a payload) and
// what happens around it (receive buffers posted, the device's loop turn, a host program that
// accepts and writes, closes, or connects with a CONNECT line). Nothing may crash or hang; every
// packet the device gives the guest is from the host's CID to the guest's, of a known op, and no
// larger than the buffer it was put in; connections stay within their bound.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "virtio/queue/mock_driver.h"
#include "virtio/vsock/vsock.h"

namespace {
using namespace kiln;

struct NullInterrupt : virtio::VirtioInterrupt {
  void used_buffers(std::uint16_t) override {}
  void config_changed() override {}
};

constexpr std::uint64_t kCid = 3;

int unix_fd(const std::string& path, bool listen) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  const auto* sa = reinterpret_cast<const sockaddr*>(&a);
  if (listen ? (::bind(fd, sa, sizeof a) != 0 || ::listen(fd, 64) != 0) : ::connect(fd, sa, sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string base = "/tmp/kiln-vsock-fuzz-" + std::to_string(::getpid());
  static const int listener = [] {
    ::unlink((base + ".sock_5000").c_str());
    std::atexit([] { ::unlink((base + ".sock_5000").c_str()); });
    return unix_fd(base + ".sock_5000", true);
  }();
  if (listener < 0) std::abort();
  const std::string uds = base + ".sock";
  ::unlink(uds.c_str());
  auto dev = virtio::VsockDevice::create({.guest_cid = kCid, .uds_path = uds, .queue_size = 64});
  if (!dev) std::abort();
  GuestMemory mem = std::move(GuestMemory::create(std::vector<RegionLayout>{{0, 0x400000}}).value());
  std::vector<virtio::Queue> queues;
  for (int i = 0; i < 3; ++i) queues.emplace_back(64);
  virtio::MockDriver rx(mem, queues[0], 64, 0x10000), tx(mem, queues[1], 64, 0x20000), ev(mem, queues[2], 64, 0x30000);
  for (auto& q : queues) q.set_features((*dev)->features());
  NullInterrupt irq;
  if (!(*dev)->activate({.mem = &mem, .queues = queues, .interrupt = &irq, .features = (*dev)->features()})) std::abort();
  std::vector<int> host_fds;
  std::uint16_t rx_seen = 0, rx_posted = 0, tx_n = 0;
  std::vector<std::uint32_t> rx_len(64, 0);
  const std::string payload(4096, 'p');
  for (std::size_t at = 0; at + 12 <= size; at += 12) {
    const std::uint8_t* r = data + at;
    const std::uint8_t action = r[11];
    if (action & 1) {  // receive buffers, of a size the input picks
      for (int i = 0; i < 4 && static_cast<std::uint16_t>(rx_posted - rx_seen) < 60; ++i, ++rx_posted) {
        const std::uint32_t len = 16 + (r[10] * 37u + static_cast<std::uint32_t>(i) * 1000u) % 8192;
        rx_len[rx_posted % 64] = len;
        rx.add_chain({{0x100000 + 0x2000ull * (rx_posted % 64), len, true}});
      }
      (void)(*dev)->queue_notify(virtio::VsockDevice::kRxQueue);
    }
    if (action & 2) {  // a packet from the guest
      virtio::VsockHeader h;
      h.src_cid = (action & 0x80) ? 7 : kCid;
      h.dst_cid = virtio::vsock::kHostCid;
      h.src_port = r[1];
      h.dst_port = r[2] == 0 ? 5000 : r[2] == 1 ? 5001 : r[2];
      h.op = r[0] % 9;
      h.type = (action & 0x40) ? 2 : virtio::vsock::kTypeStream;
      h.flags = r[3];
      h.buf_alloc = static_cast<std::uint32_t>(r[4]) << 10;
      h.fwd_cnt = static_cast<std::uint32_t>(r[5] | r[6] << 8);
      const std::uint32_t len = static_cast<std::uint32_t>(r[7] | r[8] << 8) % 4096;
      h.len = (action & 0x20) ? len + 100 : len;  // sometimes more than the chain holds
      const std::uint64_t where = 0x200000 + 0x2000ull * (tx_n++ % 32);
      if (!mem.write_obj(GuestAddress{where}, h)) std::abort();
      if (!mem.write(GuestAddress{where + sizeof h}, std::as_bytes(std::span(payload.data(), len)))) std::abort();
      tx.add_chain({{where, static_cast<std::uint32_t>(sizeof h) + len}});
      (void)(*dev)->queue_notify(virtio::VsockDevice::kTxQueue);
    }
    if (action & 4) {  // the host program on port 5000 accepts and writes
      for (int fd; (fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) host_fds.push_back(fd);
      for (int fd : host_fds) (void)!::send(fd, payload.data(), 1 + r[9] * 16u, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    if ((action & 8) && !host_fds.empty()) {  // ... or hangs up (half or whole)
      const std::size_t i = r[9] % host_fds.size();
      if (r[9] & 1) {
        ::shutdown(host_fds[i], SHUT_WR);
      } else {
        ::close(host_fds[i]);
        host_fds.erase(host_fds.begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
    if ((action & 16) && host_fds.size() < 32) {  // a host program connects to the guest
      const int fd = unix_fd(uds, false);
      if (fd >= 0) {
        const std::string line = (r[9] & 1) ? "CONNECT " + std::to_string(r[10]) + "\n" : "CONNEXT\n";
        (void)!::send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        host_fds.push_back(fd);
      }
    }
    (void)(*dev)->backend_ready();
    for (; rx_seen != rx.used_idx(); ++rx_seen) {
      const auto e = rx.used(rx_seen);
      if (e.len == 0) continue;
      const auto h = mem.read_obj<virtio::VsockHeader>(GuestAddress{0x100000 + 0x2000ull * e.id}).value();
      if (h.src_cid != virtio::vsock::kHostCid || h.dst_cid != kCid || h.op < 1 || h.op > 6 ||
          e.len != sizeof h + h.len || e.len > rx_len[e.id % 64])
        std::abort();
    }
    if ((*dev)->connection_count() > virtio::VsockDevice::kMaxConnections) std::abort();
  }
  dev->reset();
  for (int fd : host_fds) ::close(fd);
  for (int fd; (fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) ::close(fd);
  return 0;
}
