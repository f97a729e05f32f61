#pragma once
// virtio-blk (virtio 1.x, section 5.2) on a raw image: reads, writes, FLUSH with CONFIG_WCE,
// GET_ID, DISCARD and WRITE_ZEROES, read-only disks. Requests go to an I/O engine (io_uring, many
// in flight; or synchronous) and complete in any order.
//
// Durability: a write the guest saw complete before it sent a flush is on stable storage
// (fdatasync) when that flush completes; with write-through caching (the driver cleared
// `writeback`, or negotiated no FLUSH) every write is, before it completes. cache=unsafe drops
// both: faster, and a host crash can lose what the guest was told is safe.
//
// A malformed request (a header cut short, no device-writable status byte) breaks the queue:
// NEEDS_RESET. A well-formed request the device cannot do (out of range, read-only, unknown type)
// gets VIRTIO_BLK_S_IOERR or UNSUPP and the device goes on.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "virtio/block/engine.h"
#include "virtio/block/image.h"
#include "virtio/transport/virtio_device.h"

namespace kiln::virtio {

struct BlockConfig {
  std::string id;             // the drive's id (logs, the API)
  std::string serial;         // GET_ID's answer (at most 20 bytes are sent)
  bool cache_unsafe = false;  // flushes are acknowledged without fdatasync
  std::uint16_t queue_size = 256;
};

struct BlockCounters {
  std::atomic<std::uint64_t> reads{0}, writes{0}, flushes{0}, get_ids{0}, discards{0}, write_zeroes{0};
  std::atomic<std::uint64_t> read_bytes{0}, write_bytes{0};
  std::atomic<std::uint64_t> io_errors{0}, unsupported{0};
};

class BlockDevice : public VirtioDevice {
 public:
  static constexpr std::uint32_t kSectorSize = 512;
  // Request types and statuses (section 5.2.6).
  static constexpr std::uint32_t kIn = 0, kOut = 1, kFlush = 4, kGetId = 8, kDiscard = 11, kWriteZeroes = 13;
  static constexpr std::uint8_t kOk = 0, kIoErr = 1, kUnsupp = 2;
  // Feature bits.
  static constexpr std::uint64_t kFeatureSegMax = 1ull << 2, kFeatureRo = 1ull << 5, kFeatureFlush = 1ull << 9,
                                 kFeatureConfigWce = 1ull << 11, kFeatureDiscard = 1ull << 13,
                                 kFeatureWriteZeroes = 1ull << 14;

  BlockDevice(BlockConfig config, DiskImage image, std::unique_ptr<BlockEngine> engine);

  [[nodiscard]] std::uint32_t device_type() const override { return kDeviceBlock; }
  [[nodiscard]] std::string name() const override { return "virtio-blk " + config_.id; }
  [[nodiscard]] std::uint64_t features() const override;
  [[nodiscard]] std::vector<std::uint16_t> queue_max_sizes() const override { return {config_.queue_size}; }
  void read_config(std::uint64_t offset, std::span<std::byte> data) const override;
  void write_config(std::uint64_t offset, std::span<const std::byte> data) override;
  [[nodiscard]] Result<void> activate(const Activation& a) override;
  [[nodiscard]] Result<void> queue_notify(std::uint16_t index) override;
  [[nodiscard]] Result<void> backend_ready() override;
  void reset() override;

  // A new image for the same drive (the API's PATCH after boot): the capacity follows it. The
  // caller tells the driver (a config change). Requests in flight finish on the old image first.
  void replace_image(DiskImage image, std::unique_ptr<BlockEngine> engine);

  [[nodiscard]] int completion_fd() const { return engine_->completion_fd(); }
  [[nodiscard]] std::uint64_t capacity_sectors() const { return image_.size / kSectorSize; }
  [[nodiscard]] const BlockCounters& counters() const { return counters_; }
  [[nodiscard]] const BlockEngine& engine() const { return *engine_; }
  [[nodiscard]] bool write_through() const;

 private:
  struct Pending {
    bool busy = false;
    GuestAddress status;
    std::uint32_t used_len = 0;  // on success: data written into the guest + the status byte
    std::uint32_t kind = 0;
    std::uint64_t bytes = 0;
  };
  // Takes one chain: completes it now or hands it to the engine. An error breaks the queue.
  Result<void> start_request(const DescriptorChain& chain);
  Result<void> finish(std::uint16_t head, std::uint8_t status, std::uint32_t used_len);
  Result<void> take_completions();
  Result<void> complete(const std::vector<BlockCompletion>& done);
  Result<void> interrupt_if_wanted();

  BlockConfig config_;
  DiskImage image_;
  std::unique_ptr<BlockEngine> engine_;
  Activation act_;
  std::uint8_t writeback_ = 1;
  std::vector<Pending> pending_;
  std::vector<BlockCompletion> completions_;
  BlockCounters counters_;
};

}  // namespace kiln::virtio
