#pragma once
// A tap device the user made (`ip tuntap add NAME mode tap user $USER`), opened with
// IFF_VNET_HDR so that each frame carries a virtio-net header both ways (kiln offers no offloads
// yet: the headers it writes are zeros, and a received frame whose checksum the host left to be
// completed gets it completed here).
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
  [[nodiscard]] Result<bool> send(std::span<const std::byte> frame) override;
  [[nodiscard]] Result<std::size_t> receive(std::span<std::byte> buf) override;
  [[nodiscard]] int rx_fd() const override { return fd_.get(); }

 private:
  TapBackend(std::string name, UniqueFd fd) : name_(std::move(name)), fd_(std::move(fd)) {}
  std::string name_;
  UniqueFd fd_;
};

}  // namespace kiln::virtio
