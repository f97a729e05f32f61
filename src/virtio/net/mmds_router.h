#pragma once
// The metadata service on a network interface, in front of the interface's own back end (a tap or
// user-mode networking): the guest's frames for the service's address (its ARP requests for it,
// its IPv4 packets to it) and for the service stack's own address (its ARP answers) go to the
// service's network stack (UserNetBackend::create_service) and never reach the back end, so no
// packet for the service reaches the host's network; everything else passes through untouched.
// Frames the stack sends join the back end's on the way to the guest.
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/unique_fd.h"
#include "virtio/net/backend.h"
#include "virtio/net/user_net.h"

namespace kiln::virtio {

class MmdsRouter : public NetBackend {
 public:
  static Result<std::unique_ptr<MmdsRouter>> create(std::unique_ptr<NetBackend> inner,
                                                    std::unique_ptr<UserNetBackend> service);

  // Whether `frame` is for the service at `service_addr`, whose stack answers from `own_addr`
  // (both network order): an ARP packet asking for or answering either, or an IPv4 packet to the
  // service. VLAN-tagged frames are not (the service is on the untagged network).
  static bool for_service(std::span<const std::byte> frame, std::uint32_t service_addr, std::uint32_t own_addr);

  [[nodiscard]] std::string describe() const override { return inner_->describe(); }
  // The back end's offloads but segmentation: the guest's TCP to the service must come in frames
  // the service's stack takes (a checksum left to kiln is completed here).
  [[nodiscard]] std::uint64_t offloads() const override { return inner_->offloads() & ~kNetHostSegmentation; }
  [[nodiscard]] Result<void> set_guest_offloads(std::uint64_t taken) override { return inner_->set_guest_offloads(taken); }
  [[nodiscard]] Result<bool> send(const NetHeader& hdr, std::span<const std::byte> frame) override;
  [[nodiscard]] Result<std::size_t> receive(std::span<std::byte> buf) override;
  // Readable when either has frames or work (an epoll set of both).
  [[nodiscard]] int rx_fd() const override { return epoll_.get(); }
  [[nodiscard]] Result<void> service() override;
  [[nodiscard]] bool rx_pending() const override { return service_->rx_pending() || inner_->rx_pending(); }
  [[nodiscard]] std::uint64_t service_frames() const { return service_frames_; }

 private:
  MmdsRouter(std::unique_ptr<NetBackend> inner, std::unique_ptr<UserNetBackend> service)
      : inner_(std::move(inner)), service_(std::move(service)) {}

  std::unique_ptr<NetBackend> inner_;
  std::unique_ptr<UserNetBackend> service_;
  UniqueFd epoll_;
  std::vector<std::byte> scratch_;  // a service frame whose checksum is completed here
  std::uint64_t service_frames_ = 0;  // guest frames that went to the service (the VMM thread's)
};

}  // namespace kiln::virtio
