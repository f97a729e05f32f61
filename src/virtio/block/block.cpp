#include "virtio/block/block.h"

#include <cstring>

#include "base/log.h"

namespace kiln::virtio {

namespace {

// The config space (section 5.2.4), as far as kiln fills it.
struct __attribute__((packed)) BlockConfigSpace {
  std::uint64_t capacity;
  std::uint32_t size_max;
  std::uint32_t seg_max;
  std::uint16_t cylinders;
  std::uint8_t heads, sectors;
  std::uint32_t blk_size;
  std::uint8_t physical_block_exp, alignment_offset;
  std::uint16_t min_io_size;
  std::uint32_t opt_io_size;
  std::uint8_t writeback, unused0;
  std::uint16_t num_queues;
  std::uint32_t max_discard_sectors, max_discard_seg, discard_sector_alignment;
  std::uint32_t max_write_zeroes_sectors, max_write_zeroes_seg;
  std::uint8_t write_zeroes_may_unmap, unused1[3];
};
static_assert(sizeof(BlockConfigSpace) == 60);
constexpr std::uint64_t kWritebackOffset = 32;
// The most sectors one discard or write-zeroes segment may cover (and one request has one segment).
constexpr std::uint32_t kMaxDiscardSectors = 0x3fff'ffff;

struct RequestHeader {
  std::uint32_t type;
  std::uint32_t reserved;
  std::uint64_t sector;
};
struct DiscardSegment {
  std::uint64_t sector;
  std::uint32_t num_sectors;
  std::uint32_t flags;
};
constexpr std::uint32_t kDiscardUnmap = 1;

// Copies out.size() bytes from byte `skip` of the buffers' concatenation.
Result<void> copy_from(const GuestMemory& mem, const std::vector<Buffer>& bufs, std::uint64_t skip,
                       std::span<std::byte> out) {
  std::size_t done = 0;
  for (const Buffer& b : bufs) {
    if (done == out.size()) break;
    if (skip >= b.len) {
      skip -= b.len;
      continue;
    }
    const std::size_t n = std::min<std::size_t>(b.len - skip, out.size() - done);
    KILN_CHECK(mem.read(GuestAddress{b.addr.value + skip}, out.subspan(done, n)));
    done += n;
    skip = 0;
  }
  if (done != out.size()) return plain_error("a request is shorter than its header or segments");
  return {};
}

// The host iovecs of `len` bytes from byte `skip` of the buffers' concatenation.
Result<std::vector<iovec>> gather(const GuestMemory& mem, const std::vector<Buffer>& bufs, std::uint64_t skip,
                                  std::uint64_t len, bool for_write) {
  std::vector<iovec> out;
  for (const Buffer& b : bufs) {
    if (len == 0) break;
    if (skip >= b.len) {
      skip -= b.len;
      continue;
    }
    const std::uint64_t n = std::min<std::uint64_t>(b.len - skip, len);
    KILN_ASSIGN(auto v, mem.iovecs(GuestAddress{b.addr.value + skip}, n, for_write));
    out.insert(out.end(), v.begin(), v.end());
    len -= n;
    skip = 0;
  }
  return out;
}

}  // namespace

BlockDevice::BlockDevice(BlockConfig config, DiskImage image, std::unique_ptr<BlockEngine> engine)
    : config_(std::move(config)), image_(std::move(image)), engine_(std::move(engine)), pending_(config_.queue_size) {
  if (image_.size % kSectorSize != 0)
    SPDLOG_WARN("{}: {} is {} bytes, not a multiple of 512: its last {} bytes are not part of the disk", name(),
                image_.path, image_.size, image_.size % kSectorSize);
}

std::uint64_t BlockDevice::features() const {
  std::uint64_t f = kFeatureVersion1 | kFeatureRingEventIdx | kFeatureRingIndirectDesc | kFeatureSegMax |
                    kFeatureFlush | kFeatureConfigWce;
  if (image_.read_only) f |= kFeatureRo;
  else f |= kFeatureDiscard | kFeatureWriteZeroes;
  return f;
}

bool BlockDevice::write_through() const {
  if (config_.cache_unsafe) return false;
  if (!(act_.features & kFeatureFlush)) return true;
  return (act_.features & kFeatureConfigWce) && writeback_ == 0;
}

void BlockDevice::read_config(std::uint64_t offset, std::span<std::byte> data) const {
  BlockConfigSpace c{};
  c.capacity = capacity_sectors();
  // A chain is the header, the data segments and the status: the queue size bounds it.
  c.seg_max = config_.queue_size - 2u;
  c.writeback = writeback_;
  c.num_queues = 1;
  c.max_discard_sectors = c.max_write_zeroes_sectors = kMaxDiscardSectors;
  c.max_discard_seg = c.max_write_zeroes_seg = 1;
  c.discard_sector_alignment = 1;
  c.write_zeroes_may_unmap = 1;
  std::memset(data.data(), 0, data.size());
  if (offset >= sizeof c) return;
  const std::size_t n = std::min<std::size_t>(data.size(), sizeof c - offset);
  std::memcpy(data.data(), reinterpret_cast<const std::byte*>(&c) + offset, n);
}

void BlockDevice::write_config(std::uint64_t offset, std::span<const std::byte> data) {
  // Only `writeback` is the driver's to write, and only with CONFIG_WCE.
  if (offset == kWritebackOffset && data.size() == 1) writeback_ = std::to_integer<std::uint8_t>(data[0]) ? 1 : 0;
}

Result<void> BlockDevice::activate(const Activation& a) {
  if (a.queues.empty() || !a.queues[0].ready) return plain_error("the driver did not set up the request queue");
  act_ = a;
  return {};
}

void BlockDevice::reset() {
  // What is in flight writes into guest memory: it must end before the driver reuses the buffers.
  std::vector<BlockCompletion> dropped;
  engine_->drain(dropped);
  for (auto& p : pending_) p = {};
  act_ = {};
  writeback_ = 1;
}

void BlockDevice::replace_image(DiskImage image, std::unique_ptr<BlockEngine> engine) {
  completions_.clear();
  engine_->drain(completions_);
  if (act_.mem != nullptr) {
    // The requests on the old image are the guest's: they complete as they would have.
    if (auto r = complete(completions_); r) (void)interrupt_if_wanted();
  }
  image_ = std::move(image);
  engine_ = std::move(engine);
}

Result<void> BlockDevice::finish(std::uint16_t head, std::uint8_t status, std::uint32_t used_len) {
  if (status == kIoErr) counters_.io_errors.fetch_add(1, std::memory_order_relaxed);
  if (status == kUnsupp) counters_.unsupported.fetch_add(1, std::memory_order_relaxed);
  const Pending& p = pending_[head];
  KILN_CHECK(act_.mem->write_obj(p.status, status));
  KILN_CHECK(act_.queues[0].add_used(*act_.mem, head, status == kOk ? used_len : 1));
  pending_[head] = {};
  return {};
}

Result<void> BlockDevice::start_request(const DescriptorChain& chain) {
  const GuestMemory& mem = *act_.mem;
  if (chain.readable_len < sizeof(RequestHeader))
    return plain_error("a request of {} device-readable bytes is shorter than its 16-byte header", chain.readable_len);
  if (chain.writable.empty())
    return plain_error("a request without a device-writable status byte (its last buffer is device-readable)");
  if (pending_[chain.head].busy) return plain_error("chain head {} was made available again while in flight", chain.head);
  RequestHeader h{};
  KILN_CHECK(copy_from(mem, chain.readable, 0, std::as_writable_bytes(std::span(&h, 1))));
  const Buffer& last = chain.writable.back();
  Pending& p = pending_[chain.head];
  p = {.busy = true, .status = GuestAddress{last.addr.value + last.len - 1}, .used_len = 1, .kind = h.type};
  const std::uint64_t data_in = chain.writable_len - 1u;  // device-writable bytes before the status
  const std::uint64_t data_out = chain.readable_len - sizeof(RequestHeader);
  const std::uint64_t capacity = capacity_sectors();
  auto in_range = [&](std::uint64_t sector, std::uint64_t bytes) {
    return sector <= capacity && bytes / kSectorSize <= capacity - sector;
  };
  switch (h.type) {
    case kIn:
    case kOut: {
      const bool write = h.type == kOut;
      const std::uint64_t len = write ? data_out : data_in;
      if (write && image_.read_only) return finish(chain.head, kIoErr, 0);
      if (len % kSectorSize != 0 || !in_range(h.sector, len)) return finish(chain.head, kIoErr, 0);
      (write ? counters_.writes : counters_.reads).fetch_add(1, std::memory_order_relaxed);
      (write ? counters_.write_bytes : counters_.read_bytes).fetch_add(len, std::memory_order_relaxed);
      if (len == 0) return finish(chain.head, kOk, 1);
      KILN_ASSIGN(auto iov, write ? gather(mem, chain.readable, sizeof(RequestHeader), len, false)
                                  : gather(mem, chain.writable, 0, len, true));
      p.used_len = write ? 1 : static_cast<std::uint32_t>(len + 1);
      p.bytes = len;
      return engine_->submit({.kind = write ? BlockOp::Kind::kWrite : BlockOp::Kind::kRead,
                              .offset = h.sector * kSectorSize,
                              .len = len,
                              .iov = std::move(iov),
                              .sync_after = write && write_through(),
                              .tag = chain.head});
    }
    case kFlush:
      counters_.flushes.fetch_add(1, std::memory_order_relaxed);
      if (config_.cache_unsafe) return finish(chain.head, kOk, 1);
      return engine_->submit({.kind = BlockOp::Kind::kFlush, .tag = chain.head});
    case kGetId: {
      counters_.get_ids.fetch_add(1, std::memory_order_relaxed);
      // 20 bytes, zero-padded; no terminator when the serial fills them.
      std::array<std::byte, 20> id{};
      std::memcpy(id.data(), config_.serial.data(), std::min<std::size_t>(config_.serial.size(), id.size()));
      const std::uint64_t n = std::min<std::uint64_t>(data_in, id.size());
      std::uint64_t done = 0;
      for (const Buffer& b : chain.writable) {
        if (done == n) break;
        const std::uint64_t k = std::min<std::uint64_t>(b.len, n - done);
        KILN_CHECK(mem.write(b.addr, std::span(id).subspan(done, k)));
        done += k;
      }
      return finish(chain.head, kOk, static_cast<std::uint32_t>(n + 1));
    }
    case kDiscard:
    case kWriteZeroes: {
      const bool discard = h.type == kDiscard;
      (discard ? counters_.discards : counters_.write_zeroes).fetch_add(1, std::memory_order_relaxed);
      if (image_.read_only) return finish(chain.head, kIoErr, 0);
      if (data_out != sizeof(DiscardSegment)) return finish(chain.head, kUnsupp, 0);  // one segment per request
      DiscardSegment s{};
      KILN_CHECK(copy_from(mem, chain.readable, sizeof(RequestHeader), std::as_writable_bytes(std::span(&s, 1))));
      if ((s.flags & ~kDiscardUnmap) != 0 || (discard && (s.flags & kDiscardUnmap)))
        return finish(chain.head, kUnsupp, 0);
      if (s.num_sectors > kMaxDiscardSectors || !in_range(s.sector, std::uint64_t{s.num_sectors} * kSectorSize))
        return finish(chain.head, kIoErr, 0);
      return engine_->submit({.kind = discard ? BlockOp::Kind::kDiscard : BlockOp::Kind::kWriteZeroes,
                              .offset = s.sector * kSectorSize,
                              .len = std::uint64_t{s.num_sectors} * kSectorSize,
                              .tag = chain.head});
    }
    default: return finish(chain.head, kUnsupp, 0);
  }
}

Result<void> BlockDevice::take_completions() {
  completions_.clear();
  engine_->take_completions(completions_);
  return complete(completions_);
}

Result<void> BlockDevice::complete(const std::vector<BlockCompletion>& done) {
  for (const BlockCompletion& c : done) {
    if (c.tag >= pending_.size() || !pending_[c.tag].busy) continue;
    if (c.result < 0) {
      static RateLimit limit;
      if (limit.allow())
        SPDLOG_WARN("{}: an I/O request on {} failed: {}{}", name(), image_.path, std::strerror(-c.result),
                    limit.suppressed_note());
    }
    KILN_CHECK(finish(c.tag, c.result < 0 ? kIoErr : kOk, pending_[c.tag].used_len));
  }
  return {};
}

Result<void> BlockDevice::interrupt_if_wanted() {
  KILN_ASSIGN(const bool wanted, act_.queues[0].needs_interrupt(*act_.mem));
  if (wanted) act_.interrupt->used_buffers(0);
  return {};
}

Result<void> BlockDevice::queue_notify(std::uint16_t index) {
  if (index != 0) return {};
  Queue& q = act_.queues[0];
  for (;;) {
    for (;;) {
      KILN_ASSIGN(auto chain, q.pop(*act_.mem));
      if (!chain) break;
      KILN_CHECK(start_request(*chain));
    }
    KILN_ASSIGN(const bool more, q.enable_notification(*act_.mem));
    if (!more) break;
  }
  engine_->kick();
  KILN_CHECK(take_completions());
  return interrupt_if_wanted();
}

Result<void> BlockDevice::backend_ready() {
  if (act_.mem == nullptr) {
    std::vector<BlockCompletion> ignored;
    engine_->take_completions(ignored);
    return {};
  }
  KILN_CHECK(take_completions());
  return interrupt_if_wanted();
}

}  // namespace kiln::virtio
