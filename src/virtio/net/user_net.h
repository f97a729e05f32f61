#pragma once
// User-mode networking through libslirp, as QEMU's `-netdev user`: the guest is on 10.0.2.0/24
// with the host's side at 10.0.2.2 (gateway), DNS at 10.0.2.3 and DHCP handing out 10.0.2.15;
// its TCP and UDP leave through ordinary host sockets, so no root and no host set-up are needed.
// Host port forwards (hostfwd) let host programs reach servers in the guest.
//
// libslirp runs on the device's thread (the VMM's event loop), as in QEMU: send() hands the guest's
// frame straight to slirp_input(), and service() does slirp's socket and timer work when rx_fd()
// says there is some. rx_fd() is an epoll set of the sockets slirp waits on (with the events it
// waits for, kept in step after each call into slirp) and a timerfd for slirp's next timer, so the
// loop sleeps until one of them needs it. Frames slirp sends to the guest wait in a bounded queue
// (kQueueFrames frames, kQueueBytes bytes); a frame that finds it full is dropped and counted, and
// TCP sends it again.
#include <netinet/in.h>

#include <poll.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/unique_fd.h"
#include "virtio/net/addresses.h"
#include "virtio/net/backend.h"

struct Slirp;
struct SlirpConfig;

namespace kiln::virtio {

struct UserNetCounters {
  std::atomic<std::uint64_t> to_guest_dropped{0};
};

class UserNetBackend : public NetBackend {
 public:
  static constexpr std::size_t kQueueFrames = 1024, kQueueBytes = 4u << 20;
  // The largest IP packet the guest may send and be sent (libslirp's own maximum).
  static constexpr std::size_t kMtu = 65520;
  // The guest's address, its gateway (the host) and its DNS server.
  static constexpr const char* kGuestAddr = kUserNetGuestAddr;
  static constexpr const char* kHostAddr = "10.0.2.2";
  static constexpr const char* kDnsAddr = "10.0.2.3";

  // Every forward is bound before this returns: a port in use is an error naming it.
  static Result<std::unique_ptr<UserNetBackend>> create(const std::vector<HostForward>& forwards);
  // A network stack for one service kiln itself serves to the guest (the metadata service): the
  // guest's TCP connections to `service_addr`:`port` (network order, from any guest address) are
  // each connected to the Unix socket at `unix_path`; nothing else leaves it. slirp's own address
  // (own_addr(), which it asks the guest's MAC from) is another in the service's /24.
  static Result<std::unique_ptr<UserNetBackend>> create_service(std::uint32_t service_addr, std::uint16_t port,
                                                                const std::string& unix_path);
  ~UserNetBackend() override;
  UserNetBackend(const UserNetBackend&) = delete;

  [[nodiscard]] std::string describe() const override { return "user-mode networking"; }
  // Whole frames both ways: the device completes a checksum the guest left to it; frames from
  // slirp carry correct checksums (made in this process, never on a wire) and are marked
  // DATA_VALID, which a guest with GUEST_CSUM need not check again.
  [[nodiscard]] Result<bool> send(const NetHeader& hdr, std::span<const std::byte> frame) override;
  [[nodiscard]] Result<std::size_t> receive(std::span<std::byte> buf) override;
  [[nodiscard]] int rx_fd() const override { return epoll_.get(); }
  [[nodiscard]] Result<void> service() override;
  [[nodiscard]] bool rx_pending() const override { return !to_guest_.empty(); }
  [[nodiscard]] const UserNetCounters& counters() const { return counters_; }
  // For create_service(): the service's address and slirp's own (network order).
  [[nodiscard]] std::uint32_t service_addr() const { return service_addr_; }
  [[nodiscard]] std::uint32_t own_addr() const { return own_addr_; }

  // Called by slirp, inside send() or service().
  void from_slirp(const void* buf, std::size_t len);

 private:
  UserNetBackend() = default;
  static Result<std::unique_ptr<UserNetBackend>> start(const SlirpConfig& cfg);
  // What slirp waits for now: its sockets into epoll_ (only what changed), its next deadline
  // (a timer of its own, or its TCP timers' tick) into timer_.
  Result<void> watch(bool now_again = false);
  static constexpr int kPasses = 4;
  void forget_fd(int fd);
  struct Timer;
  friend struct SlirpGlue;

  Slirp* slirp_ = nullptr;
  UniqueFd epoll_, timer_;
  std::vector<pollfd> fds_;                         // slirp_pollfds_fill's set, reused
  struct Watched {
    std::uint32_t events;  // in epoll_
    std::uint64_t pass;    // the last watch() that found slirp waiting on it
  };
  std::unordered_map<int, Watched> watched_;  // by fd
  std::uint64_t pass_ = 0;
  std::int64_t armed_ns_ = -1;                      // timer_'s deadline (CLOCK_MONOTONIC), -1: none
  std::deque<std::vector<std::byte>> to_guest_;
  std::size_t to_guest_bytes_ = 0;  // the frames' bytes
  std::vector<std::unique_ptr<Timer>> timers_;
  UserNetCounters counters_;
  std::uint32_t service_addr_ = 0, own_addr_ = 0;
};

}  // namespace kiln::virtio
