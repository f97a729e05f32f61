#pragma once
// virtio-net (virtio 1.x, section 5.1): one receive and one transmit queue, a MAC address, link
// status and mergeable receive buffers, over a back end (a tap device or user-mode networking).
//
// Offloads: CSUM and GUEST_CSUM always: a checksum the guest leaves to the device is completed here
// when the back end does not take it so, and a frame from a back end reaches a guest without
// GUEST_CSUM whole and checksummed. TSO4/6, ECN and UFO both ways only when the back end offers
// them (a tap): those frames pass between the guest and the back end with their headers as they
// are. A header that uses an offload the driver did not take is dropped and counted.
//
// Where the work runs: queue notifications and the back end's readiness both arrive on the VMM's
// event loop, never on a vCPU thread. Each call does a bounded amount of work (kBudget frames) and
// then kicks itself through its own eventfd, so a flooding guest or host cannot hold the loop. The
// back end's own work (user-mode networking's stack) runs there too, when its fd says so and after
// each batch the guest sends.
//
// Bounds: the device holds at most one received frame that no guest buffer has taken yet; beyond
// it frames wait in the back end, whose queue is bounded. A transmitted frame the back end cannot
// take is dropped and counted.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "virtio/net/addresses.h"
#include "virtio/net/backend.h"
#include "virtio/transport/virtio_device.h"

namespace kiln::virtio {

struct NetConfig {
  std::string id;                  // the interface's id (logs, the API)
  std::optional<MacAddress> mac;   // none: the guest's driver picks a random one
  std::uint16_t queue_size = 256;
};

struct NetCounters {
  std::atomic<std::uint64_t> rx_frames{0}, rx_bytes{0}, tx_frames{0}, tx_bytes{0};
  // Frames the back end could not take, received frames no guest buffer could hold (or with an
  // offload the driver did not take), transmitted chains that were not a frame (too short, too
  // long, an offload the driver did not take).
  std::atomic<std::uint64_t> tx_dropped{0}, rx_dropped{0}, tx_malformed{0};
  // Times the device stopped receiving because the guest had no buffers.
  std::atomic<std::uint64_t> rx_no_buffers{0};
};

class NetDevice : public VirtioDevice {
 public:
  static constexpr std::uint64_t kFeatureMac = 1ull << 5, kFeatureMrgRxbuf = 1ull << 15,
                                 kFeatureStatus = 1ull << 16;
  static constexpr std::uint16_t kRxQueue = 0, kTxQueue = 1;
  static constexpr std::uint16_t kLinkUp = 1;
  static constexpr int kBudget = 256;

  static Result<std::unique_ptr<NetDevice>> create(NetConfig config, std::unique_ptr<NetBackend> backend);

  [[nodiscard]] std::uint32_t device_type() const override { return kDeviceNet; }
  [[nodiscard]] std::string name() const override { return "virtio-net " + config_.id; }
  [[nodiscard]] std::uint64_t features() const override;
  [[nodiscard]] std::vector<std::uint16_t> queue_max_sizes() const override {
    return {config_.queue_size, config_.queue_size};
  }
  void read_config(std::uint64_t offset, std::span<std::byte> data) const override;
  void write_config(std::uint64_t, std::span<const std::byte>) override {}
  [[nodiscard]] Result<void> activate(const Activation& a) override;
  [[nodiscard]] Result<void> queue_notify(std::uint16_t index) override;
  [[nodiscard]] Result<void> backend_ready() override;
  void reset() override;

  // Readable when the device has work: frames from the back end, or its own kick. Watch it
  // edge-triggered (EPOLLET) and call backend_ready().
  [[nodiscard]] int event_fd() const { return epoll_.get(); }
  [[nodiscard]] const NetCounters& counters() const { return counters_; }
  [[nodiscard]] const NetBackend& backend() const { return *backend_; }
  [[nodiscard]] const NetConfig& config() const { return config_; }

 private:
  NetDevice(NetConfig config, std::unique_ptr<NetBackend> backend) : config_(std::move(config)), backend_(std::move(backend)) {}
  Result<void> process_rx();
  Result<void> process_tx();
  // Copies the pending frame (with its header) into the first `n` popped receive chains.
  Result<void> deliver(std::size_t n, std::size_t len);
  void kick();
  // EPOLL_CTL_ADD or _DEL of the back end's rx_fd() in the device's set (edge-triggered); false
  // with errno when epoll refuses.
  bool rx_fd_ctl(int op);
  // Watches the back end's rx_fd() or stops watching it (only for a back end whose rx_fd() announces
  // nothing but frames); a no-op when it already is so.
  void watch_rx_fd(bool on);
  // The back end's own work (NetBackend::service()); a failure is logged, the device goes on.
  void service_backend();

  NetConfig config_;
  std::unique_ptr<NetBackend> backend_;
  UniqueFd epoll_, kick_;
  Activation act_;
  bool mrg_ = false;
  std::uint64_t negotiated_ = 0;  // the driver's features
  bool tx_deferred_ = false;
  bool rx_fd_watched_ = true;
  // The received frame waiting for guest buffers: header space, then the frame (rx_len_ bytes).
  std::vector<std::byte> rx_buf_, tx_buf_;
  std::size_t rx_len_ = 0;
  // Receive chains taken off the queue and not yet used (mergeable buffers gather several).
  std::vector<DescriptorChain> rx_chains_;
  NetCounters counters_;
};

}  // namespace kiln::virtio
