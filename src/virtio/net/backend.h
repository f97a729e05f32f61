#pragma once
// What a virtio-net device sends frames through: a tap device or user-mode networking (libslirp).
// Frames are plain Ethernet frames; the virtio-net header stays in the device.
//
// Flow control: send() never blocks and never queues without bound: a back end that cannot take a
// frame now says so and the device drops it (counted), as a full NIC ring would; TCP recovers.
// receive() hands over the next frame, if any. rx_fd() becomes readable when frames arrive: the
// device watches it edge-triggered and drains receive() until it is empty or the guest has no
// buffers left, so a guest that stops reading leaves the frames where the back end's own bound
// keeps them (the tap's queue, the user-mode stack's window).
#include <cstddef>
#include <span>
#include <string>

#include "base/error.h"

namespace kiln::virtio {

// The largest frame kiln moves either way: a 64 KiB IP packet and its Ethernet and VLAN headers.
inline constexpr std::size_t kMaxFrame = 65536 + 14 + 4;

class NetBackend {
 public:
  virtual ~NetBackend() = default;
  // For log lines: "tap kiln0", "user-mode networking".
  [[nodiscard]] virtual std::string describe() const = 0;
  // Sends one frame. False: the back end cannot take it now (dropped by the caller).
  [[nodiscard]] virtual Result<bool> send(std::span<const std::byte> frame) = 0;
  // The next frame into `buf` (kMaxFrame bytes): its length, or 0 when there is none now. A frame
  // that does not fit is dropped by the back end.
  [[nodiscard]] virtual Result<std::size_t> receive(std::span<std::byte> buf) = 0;
  [[nodiscard]] virtual int rx_fd() const = 0;
};

}  // namespace kiln::virtio
