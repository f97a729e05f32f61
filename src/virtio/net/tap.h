#pragma once
// A tap device the user made (`ip tuntap add NAME mode tap user $USER`), opened with
// IFF_VNET_HDR so that each frame carries a virtio-net header both ways: the guest's checksum and
// segmentation offloads pass through to the host's stack as they are, and the host's large,
// partially checksummed frames reach a guest whose driver took those offloads (TUNSETOFFLOAD).
#include <cstdint>
#include <memory>
#include <string>

#include "base/unique_fd.h"
#include "virtio/net/backend.h"

namespace kiln::virtio {

class TapBackend : public NetBackend {
 public:
  // An error names the tap and the fix: no such interface, not a tap, not kiln's to open.
  static Result<std::unique_ptr<TapBackend>> open(const std::string& name);

  [[nodiscard]] std::string describe() const override { return "tap " + name_; }
  [[nodiscard]] std::uint64_t offloads() const override { return offloads_; }
  [[nodiscard]] Result<void> set_guest_offloads(std::uint64_t taken) override;
  [[nodiscard]] Result<bool> send(const NetHeader& hdr, std::span<const std::byte> frame) override;
  [[nodiscard]] Result<std::size_t> receive(std::span<std::byte> buf) override;
  [[nodiscard]] int rx_fd() const override { return fd_.get(); }
  [[nodiscard]] bool rx_fd_only_frames() const override { return true; }

 private:
  TapBackend(std::string name, UniqueFd fd, std::uint64_t offloads)
      : name_(std::move(name)), fd_(std::move(fd)), offloads_(offloads) {}
  std::string name_;
  UniqueFd fd_;
  std::uint64_t offloads_;
};

}  // namespace kiln::virtio
