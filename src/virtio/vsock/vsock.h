#pragma once
// virtio-vsock (virtio 1.x, section 5.10) with Firecracker's hybrid design: the guest's stream
// sockets meet Unix sockets on the host.
//
//   host -> guest: a host program connects to `uds_path` and writes "CONNECT <port>\n"; kiln asks
//   the guest (REQUEST to <port>) and, once the guest accepts, writes "OK <host port>\n" (the host
//   side's port for this connection); then bytes flow both ways.
//   guest -> host: a guest connection to the host (CID 2), port P, is connected to the Unix socket
//   "<uds_path>_P"; nothing listening there refuses it (RST).
//
// Flow control is the spec's credit: kiln grants each connection kBufAlloc bytes, holds at most
// that much the host socket has not taken yet, and reports what it forwarded (CREDIT_UPDATE) as
// the host reads; a guest that sends past its credit has its connection reset. kiln sends the
// guest only what the guest's own credit allows, and reads a host socket only then, so a host
// peer that stops reading, or a guest that does, costs kiln at most kBufAlloc per connection,
// and connections are bounded (kMaxConnections). Half-closes cross both ways (SHUTDOWN with
// SEND/RCV; shutdown(SHUT_WR) and EOF on the host side); a reset either way ends the connection.
//
// All of it runs on the VMM's loop (event_fd(), watched edge-triggered), never on a vCPU; each
// call does a bounded amount of work and re-kicks itself for the rest.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/unique_fd.h"
#include "virtio/transport/virtio_device.h"
#include "virtio/vsock/packet.h"

namespace kiln::virtio {

struct VsockConfig {
  std::uint64_t guest_cid = 3;
  std::string uds_path;  // must not exist yet: created here, removed by the destructor
  std::uint16_t queue_size = 256;
};

struct VsockCounters {
  std::atomic<std::uint64_t> rx_packets{0}, tx_packets{0}, rx_bytes{0}, tx_bytes{0};
  // Connections made (either way), refused (nothing listening, too many), reset by either side.
  std::atomic<std::uint64_t> connections{0}, refused{0}, resets{0};
  // Packets that were not a packet (short, too long, a foreign CID).
  std::atomic<std::uint64_t> tx_malformed{0};
};

class VsockDevice : public VirtioDevice {
 public:
  static constexpr std::uint16_t kRxQueue = 0, kTxQueue = 1, kEventQueue = 2;
  static constexpr std::uint32_t kBufAlloc = 256 * 1024;
  static constexpr std::size_t kMaxPayload = 64 * 1024;
  static constexpr std::size_t kMaxConnections = 1024;
  static constexpr std::size_t kMaxPendingHosts = 64;
  static constexpr int kBudget = 256;
  // A host connection whose guest has not answered its REQUEST by then is dropped.
  static constexpr std::chrono::seconds kConnectTimeout{2};

  static Result<std::unique_ptr<VsockDevice>> create(VsockConfig config);
  ~VsockDevice() override;

  [[nodiscard]] std::uint32_t device_type() const override { return kDeviceVsock; }
  [[nodiscard]] std::string name() const override { return "virtio-vsock"; }
  [[nodiscard]] std::uint64_t features() const override;
  [[nodiscard]] std::vector<std::uint16_t> queue_max_sizes() const override {
    return {config_.queue_size, config_.queue_size, config_.queue_size};
  }
  void read_config(std::uint64_t offset, std::span<std::byte> data) const override;
  void write_config(std::uint64_t, std::span<const std::byte>) override {}
  [[nodiscard]] Result<void> activate(const Activation& a) override;
  [[nodiscard]] Result<void> queue_notify(std::uint16_t index) override;
  [[nodiscard]] Result<void> backend_ready() override;
  void reset() override;

  // Readable when there is work (a host socket, the listener, the device's own kick): watch it
  // edge-triggered and call backend_ready().
  [[nodiscard]] int event_fd() const { return epoll_.get(); }
  [[nodiscard]] const VsockCounters& counters() const { return counters_; }
  [[nodiscard]] const VsockConfig& config() const { return config_; }
  [[nodiscard]] std::size_t connection_count() const { return conns_.size(); }

 private:
  // (the host side's port, the guest's port)
  using Key = std::pair<std::uint32_t, std::uint32_t>;
  struct Conn;
  enum Control : std::uint8_t { kCtlRst = 1, kCtlResponse = 2, kCtlRequest = 4, kCtlShutdown = 8, kCtlCredit = 16 };

  explicit VsockDevice(VsockConfig config);
  Result<void> process_tx();
  Result<void> process_rx();
  void handle_packet(const VsockHeader& h, std::span<const std::byte> payload);
  void guest_connect(const VsockHeader& h);
  void on_listener();
  void on_pending_host(int fd);
  void on_conn_event(Conn& c, std::uint32_t events);
  // The next packet for the guest into rx_buf_ (header and payload): its size, or 0 for none.
  std::size_t next_rx_packet(std::size_t room);
  std::size_t next_rx_packet_once(std::size_t room);
  std::size_t control_packet(Conn& c);
  std::size_t data_packet(Conn& c, std::size_t room);
  VsockHeader header_for(const Conn& c, std::uint16_t op) const;
  void set_control(Conn& c, std::uint8_t what);
  void reset_conn(Conn& c);
  void close_host(Conn& c);
  void flush(Conn& c);
  void rearm(Conn& c);
  void make_ready(Conn& c);
  void drop(const Key& k);
  void drop_all();
  void expire_connecting();
  std::uint32_t alloc_port();
  void kick();
  Conn* find(const Key& k);

  VsockConfig config_;
  UniqueFd listener_, epoll_, kick_;
  Activation act_;
  bool tx_deferred_ = false;
  std::map<Key, std::unique_ptr<Conn>> conns_;
  std::unordered_map<int, Key> by_fd_;
  // Host connections still sending their "CONNECT <port>\n" (what they sent so far).
  std::unordered_map<int, std::pair<UniqueFd, std::string>> pending_hosts_;
  std::deque<Key> control_list_, ready_list_;
  // RSTs for packets that belong to no connection (bounded; beyond it they are dropped).
  std::deque<Key> orphan_rsts_;
  std::optional<DescriptorChain> rx_chain_;
  std::vector<std::byte> rx_buf_, tx_buf_;
  std::uint32_t next_port_ = 1u << 30;
  // The earliest deadline of a host connection waiting for the guest's answer, if any.
  std::optional<std::chrono::steady_clock::time_point> next_deadline_;
  VsockCounters counters_;
};

}  // namespace kiln::virtio
