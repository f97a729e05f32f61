#pragma once
// virtio-vsock's packets (virtio 1.x, section 5.10): a 44-byte header before each payload, and
// the credit each side grants the other (5.10.6.3). Little-endian, as x86 is.
#include <cstdint>

namespace kiln::virtio {

struct VsockHeader {
  std::uint64_t src_cid = 0, dst_cid = 0;
  std::uint32_t src_port = 0, dst_port = 0, len = 0;
  std::uint16_t type = 0, op = 0;
  std::uint32_t flags = 0, buf_alloc = 0, fwd_cnt = 0;
} __attribute__((packed));
static_assert(sizeof(VsockHeader) == 44);

namespace vsock {
inline constexpr std::uint64_t kHostCid = 2;
inline constexpr std::uint16_t kTypeStream = 1;
enum Op : std::uint16_t {
  kRequest = 1,
  kResponse = 2,
  kRst = 3,
  kShutdown = 4,
  kRw = 5,
  kCreditUpdate = 6,
  kCreditRequest = 7,
};
// SHUTDOWN's flags: the sender will receive no more, will send no more.
inline constexpr std::uint32_t kShutdownRcv = 1, kShutdownSend = 2;
}  // namespace vsock

// What a sender may still send its peer: the peer's buffer less what is in flight (sent and not
// yet forwarded by the peer). Counters wrap, as the spec's do; a peer that claims to have
// forwarded more than it was sent gets nothing.
struct VsockCredit {
  std::uint32_t peer_buf_alloc = 0, peer_fwd_cnt = 0, tx_cnt = 0;
  void update(const VsockHeader& h) {
    peer_buf_alloc = h.buf_alloc;
    peer_fwd_cnt = h.fwd_cnt;
  }
  [[nodiscard]] std::uint32_t available() const {
    const std::uint32_t in_flight = tx_cnt - peer_fwd_cnt;
    return in_flight >= peer_buf_alloc ? 0 : peer_buf_alloc - in_flight;
  }
};

}  // namespace kiln::virtio
