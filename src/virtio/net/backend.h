#pragma once
// What a virtio-net device sends frames through: a tap device or user-mode networking (libslirp).
// Frames are Ethernet frames, each with the virtio-net header's offload fields beside it.
//
// Offloads (virtio 1.x, section 5.1.6.2): offloads() names the offload features a back end honours
// itself end to end, e.g. a tap takes a TSO frame and its half-done checksum as the guest wrote
// them, and gives the guest the host's own large and partially checksummed frames. The device adds
// what it can do in software for any back end (completing a checksum the guest left to it, giving
// the guest only whole, checksummed frames), and never hands a back end a header it did not offer.
//
// Flow control: send() never blocks and never queues without bound: a back end that cannot take a
// frame now says so and the device drops it (counted), as a full NIC ring would; TCP recovers.
// receive() hands over the next frame, if any. rx_fd() becomes readable when frames arrive (or a
// back end has work for service()): the device watches it edge-triggered and drains receive()
// until it is empty or the guest has no buffers left, so a guest that stops reading leaves the
// frames where the back end's own bound keeps them (the tap's queue, the user-mode stack's window).
//
// Threads: a back end is used by one thread at a time (the device's, under its lock).
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "base/error.h"

namespace kiln::virtio {

// The largest frame kiln moves either way: a 64 KiB IP packet and its Ethernet and VLAN headers.
inline constexpr std::size_t kMaxFrame = 65536 + 14 + 4;

// The virtio-net header with VERSION_1 (section 5.1.6): 12 bytes before every frame, little-endian.
struct NetHeader {
  std::uint8_t flags = 0;
  std::uint8_t gso_type = 0;
  std::uint16_t hdr_len = 0;
  std::uint16_t gso_size = 0;
  std::uint16_t csum_start = 0;
  std::uint16_t csum_offset = 0;
  std::uint16_t num_buffers = 0;
};
static_assert(sizeof(NetHeader) == 12);
// What NetBackend::receive() is given: a header and the largest frame.
inline constexpr std::size_t kRxBufferSize = sizeof(NetHeader) + kMaxFrame;
inline constexpr std::uint8_t kNetHdrNeedsCsum = 1;
inline constexpr std::uint8_t kNetHdrDataValid = 2;
inline constexpr std::uint8_t kNetGsoNone = 0, kNetGsoTcpV4 = 1, kNetGsoUdp = 3, kNetGsoTcpV6 = 4, kNetGsoEcn = 0x80;

// virtio-net's offload feature bits (section 5.1.3). GUEST_* are what the guest may be given,
// CSUM and HOST_* what it may send.
inline constexpr std::uint64_t kNetFCsum = 1ull << 0, kNetFGuestCsum = 1ull << 1, kNetFGuestTso4 = 1ull << 7,
                               kNetFGuestTso6 = 1ull << 8, kNetFGuestEcn = 1ull << 9, kNetFGuestUfo = 1ull << 10,
                               kNetFHostTso4 = 1ull << 11, kNetFHostTso6 = 1ull << 12, kNetFHostEcn = 1ull << 13,
                               kNetFHostUfo = 1ull << 14;
inline constexpr std::uint64_t kNetGuestOffloads = kNetFGuestCsum | kNetFGuestTso4 | kNetFGuestTso6 | kNetFGuestEcn | kNetFGuestUfo;
inline constexpr std::uint64_t kNetHostSegmentation = kNetFHostTso4 | kNetFHostTso6 | kNetFHostEcn | kNetFHostUfo;
inline constexpr std::uint64_t kNetOffloads = kNetGuestOffloads | kNetFCsum | kNetHostSegmentation;

class NetBackend {
 public:
  virtual ~NetBackend() = default;
  // For log lines: "tap kiln0", "user-mode networking".
  [[nodiscard]] virtual std::string describe() const = 0;
  // The offload features (of kNetOffloads) this back end honours itself: its send() takes headers
  // that use them, its receive() may give headers that use the GUEST_* ones the guest took.
  [[nodiscard]] virtual std::uint64_t offloads() const { return 0; }
  // The guest's driver took these GUEST_* offloads (of offloads()); 0 at a reset. The back end
  // gives no frame that needs one it did not take.
  [[nodiscard]] virtual Result<void> set_guest_offloads(std::uint64_t) { return {}; }
  // Sends one frame; `hdr` uses only offloads() (num_buffers is 0). False: the back end cannot
  // take it now (dropped by the caller).
  [[nodiscard]] virtual Result<bool> send(const NetHeader& hdr, std::span<const std::byte> frame) = 0;
  // The next frame, laid out in `buf` (kRxBufferSize bytes) as the guest gets it: its header (the
  // offload fields; num_buffers is the device's) in the first sizeof(NetHeader) bytes, the frame
  // right after. Returns the frame's length (without the header), or 0 when there is none now. A
  // frame that does not fit is dropped by the back end. One buffer, so that a tap reads both
  // with one read().
  [[nodiscard]] virtual Result<std::size_t> receive(std::span<std::byte> buf) = 0;
  [[nodiscard]] virtual int rx_fd() const = 0;
  // Whether rx_fd() announces nothing but frames for receive(): then the device stops watching it
  // while the guest has no buffers (the frames wait in the back end's own bounded queue) and
  // watches it again when the guest adds some, so that a flood it cannot deliver does not wake it
  // once per frame. A back end with work of its own behind rx_fd() (service()) says false.
  [[nodiscard]] virtual bool rx_fd_only_frames() const { return false; }
  // A back end with work of its own (user-mode networking's stack: its sockets and timers) does it
  // here, on the device's thread: the device calls this when rx_fd() becomes readable and after
  // each batch of send()s. Frames it makes wait for receive().
  [[nodiscard]] virtual Result<void> service() { return {}; }
  // Whether receive() has a frame now that rx_fd() may not announce: one made inside send() or
  // service() (the device asks after calling them).
  [[nodiscard]] virtual bool rx_pending() const { return false; }
};

// Fills in the checksum a header with NEEDS_CSUM asks for: the Internet checksum of the frame from
// csum_start on, stored at csum_start + csum_offset. False when those point outside the frame.
bool complete_checksum(std::span<std::byte> frame, std::uint16_t csum_start, std::uint16_t csum_offset);

}  // namespace kiln::virtio
