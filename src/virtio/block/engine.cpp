#include "virtio/block/engine.h"

#include <fcntl.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>
#include <optional>

namespace kiln::virtio {

namespace {

// Reads or writes all of `iov` at `offset`, continuing after short transfers.
int transfer_all(int fd, bool write, std::vector<iovec> iov, std::uint64_t offset) {
  std::size_t done = 0;
  std::size_t first = 0;
  while (first < iov.size()) {
    const int cnt = static_cast<int>(std::min<std::size_t>(iov.size() - first, IOV_MAX));
    const ssize_t n = write ? ::pwritev(fd, iov.data() + first, cnt, static_cast<off_t>(offset + done))
                            : ::preadv(fd, iov.data() + first, cnt, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) return -EIO;  // past the end of the file: it shrank under us
    done += static_cast<std::size_t>(n);
    std::size_t left = static_cast<std::size_t>(n);
    while (first < iov.size() && left >= iov[first].iov_len) left -= iov[first++].iov_len;
    if (first < iov.size()) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  return static_cast<int>(std::min<std::size_t>(done, INT32_MAX));
}

int datasync(int fd, std::atomic<std::uint64_t>& count) {
  count.fetch_add(1, std::memory_order_relaxed);
  return ::fdatasync(fd) == 0 ? 0 : -errno;
}

// Zeros [offset, offset+len) without fallocate (a file system or device that has no ZERO_RANGE).
int write_zeroes_by_hand(int fd, std::uint64_t offset, std::uint64_t len) {
  static const std::vector<char> zeros(1 << 20, 0);
  while (len > 0) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(len, zeros.size()));
    iovec v{const_cast<char*>(zeros.data()), n};
    if (const int r = transfer_all(fd, true, {v}, offset); r < 0) return r;
    offset += n;
    len -= n;
  }
  return 0;
}

}  // namespace

int run_block_op_sync(int fd, const BlockOp& op, std::atomic<std::uint64_t>& fdatasyncs) {
  switch (op.kind) {
    case BlockOp::Kind::kRead: return transfer_all(fd, false, op.iov, op.offset);
    case BlockOp::Kind::kWrite: {
      const int n = transfer_all(fd, true, op.iov, op.offset);
      if (n < 0 || !op.sync_after) return n;
      const int s = datasync(fd, fdatasyncs);
      return s < 0 ? s : n;
    }
    case BlockOp::Kind::kFlush: return datasync(fd, fdatasyncs);
    case BlockOp::Kind::kDiscard:
      if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(op.offset),
                      static_cast<off_t>(op.len)) == 0)
        return 0;
      // Discard is a hint: a file system that cannot punch holes keeps the data, which is allowed.
      return errno == EOPNOTSUPP ? 0 : -errno;
    case BlockOp::Kind::kWriteZeroes:
      if (::fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(op.offset),
                      static_cast<off_t>(op.len)) == 0)
        return 0;
      return errno == EOPNOTSUPP ? write_zeroes_by_hand(fd, op.offset, op.len) : -errno;
  }
  return -EINVAL;
}

namespace {

class SyncEngine : public BlockEngine {
 public:
  explicit SyncEngine(int fd) : fd_(fd) {}
  [[nodiscard]] Kind kind() const override { return Kind::kSync; }
  Result<void> submit(BlockOp op) override {
    done_.push_back({op.tag, run_block_op_sync(fd_, op, fdatasyncs_)});
    return {};
  }
  void take_completions(std::vector<BlockCompletion>& out) override {
    out.insert(out.end(), done_.begin(), done_.end());
    done_.clear();
  }
  void drain(std::vector<BlockCompletion>& out) override { take_completions(out); }
  [[nodiscard]] std::size_t in_flight() const override { return done_.size(); }

 private:
  int fd_;
  std::vector<BlockCompletion> done_;
};

class UringEngine : public BlockEngine {
 public:
  UringEngine(int fd, unsigned depth) : fd_(fd), slots_(depth) {}
  ~UringEngine() override {
    if (ring_ready_) {
      std::vector<BlockCompletion> ignored;
      drain(ignored);
      io_uring_queue_exit(&ring_);
    }
  }
  Result<void> init(unsigned depth) {
    // Two entries per request: a write-through write is a write linked to an fdatasync.
    if (const int r = io_uring_queue_init(2 * depth, &ring_, 0); r < 0) {
      errno = -r;
      return errno_error("io_uring_queue_init");
    }
    ring_ready_ = true;
    event_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!event_) return errno_error("eventfd");
    if (const int r = io_uring_register_eventfd(&ring_, event_.get()); r < 0) {
      errno = -r;
      return errno_error("io_uring_register_eventfd");
    }
    return {};
  }
  [[nodiscard]] Kind kind() const override { return Kind::kUring; }
  [[nodiscard]] int completion_fd() const override { return event_.get(); }
  [[nodiscard]] std::size_t in_flight() const override { return in_flight_; }

  Result<void> submit(BlockOp op) override {
    if (op.kind == BlockOp::Kind::kDiscard || op.kind == BlockOp::Kind::kWriteZeroes ||
        (op.kind == BlockOp::Kind::kWrite && !op.sync_after)) {
      // Discard and write-zeroes: rare, and with fallbacks that io_uring does not have.
      // A buffered write is a copy into the page cache. io_uring does that at submit only on file
      // systems that take non-blocking buffered writes (not ext4 or tmpfs: RWF_NOWAIT gets
      // EOPNOTSUPP there), and elsewhere hands every write to a worker thread, which then takes
      // turns on a core with this thread and wakes it per completion. Measured on a 2-core host
      // (bench/block.py, 128 KiB writes at queue depth 32): ~7 GB/s through the workers, ~13.8 GB/s
      // copied here, the host's own single-stream write rate. So kiln copies here, as
      // io_uring's fast path would; flushes and write-through writes (their fdatasync) go to the ring.
      inline_done_.push_back({op.tag, run_block_op_sync(fd_, op, fdatasyncs_)});
      return {};
    }
    if (op.tag >= slots_.size()) return plain_error("block request tag {} is past the engine's depth", op.tag);
    Slot& s = slots_[op.tag];
    if (s.parts_left != 0) return plain_error("block request tag {} is already in flight", op.tag);
    s.op = std::move(op);
    s.result = 0;
    s.parts_left = 1;
    const std::uint64_t tag = s.op->tag;
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) return plain_error("the io_uring submission queue is full");
    switch (s.op->kind) {
      case BlockOp::Kind::kRead:
        io_uring_prep_readv(sqe, fd_, s.op->iov.data(), static_cast<unsigned>(s.op->iov.size()), s.op->offset);
        break;
      case BlockOp::Kind::kWrite:
        // Only write-through writes reach the ring (linked to their fdatasync below).
        io_uring_prep_writev(sqe, fd_, s.op->iov.data(), static_cast<unsigned>(s.op->iov.size()), s.op->offset);
        break;
      default:
        io_uring_prep_fsync(sqe, fd_, IORING_FSYNC_DATASYNC);
        fdatasyncs_.fetch_add(1, std::memory_order_relaxed);
        break;
    }
    io_uring_sqe_set_data64(sqe, tag);
    if (s.op->kind == BlockOp::Kind::kWrite && s.op->sync_after) {
      sqe->flags |= IOSQE_IO_LINK;
      io_uring_sqe* sync = get_sqe();
      if (sync == nullptr) return plain_error("the io_uring submission queue is full");
      io_uring_prep_fsync(sync, fd_, IORING_FSYNC_DATASYNC);
      io_uring_sqe_set_data64(sync, tag | (1u << 16));
      fdatasyncs_.fetch_add(1, std::memory_order_relaxed);
      s.parts_left = 2;
    }
    ++in_flight_;
    return {};
  }

  void kick() override {
    if (io_uring_sq_ready(&ring_) > 0) io_uring_submit(&ring_);
  }

  void take_completions(std::vector<BlockCompletion>& out) override {
    std::uint64_t ignored = 0;
    (void)!::read(event_.get(), &ignored, sizeof ignored);
    out.insert(out.end(), inline_done_.begin(), inline_done_.end());
    inline_done_.clear();
    io_uring_cqe* cqe = nullptr;
    while (io_uring_peek_cqe(&ring_, &cqe) == 0 && cqe != nullptr) {
      complete(cqe, out);
      io_uring_cqe_seen(&ring_, cqe);
    }
  }

  void drain(std::vector<BlockCompletion>& out) override {
    kick();
    take_completions(out);
    while (in_flight_ > 0) {
      io_uring_cqe* cqe = nullptr;
      const int r = io_uring_wait_cqe(&ring_, &cqe);
      if (r == -EINTR) continue;
      if (r < 0) break;  // the ring is gone; nothing more can complete
      complete(cqe, out);
      io_uring_cqe_seen(&ring_, cqe);
    }
  }

 private:
  struct Slot {
    std::optional<BlockOp> op;
    int result = 0;
    int parts_left = 0;
  };

  io_uring_sqe* get_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

  void complete(io_uring_cqe* cqe, std::vector<BlockCompletion>& out) {
    const std::uint64_t data = io_uring_cqe_get_data64(cqe);
    const auto tag = static_cast<std::uint16_t>(data & 0xffff);
    const bool is_sync = (data >> 16) & 1;
    if (tag >= slots_.size()) return;
    Slot& s = slots_[tag];
    if (s.parts_left == 0) return;
    if (!is_sync) {
      s.result = cqe->res;
      // A transfer that came back short is an I/O error to the guest (the file shrank).
      if (cqe->res >= 0 && (s.op->kind == BlockOp::Kind::kRead || s.op->kind == BlockOp::Kind::kWrite) &&
          static_cast<std::uint64_t>(cqe->res) != s.op->len)
        s.result = -EIO;
    } else if (cqe->res < 0 && s.result >= 0) {
      s.result = cqe->res;
    }
    if (--s.parts_left == 0) {
      out.push_back({tag, s.result});
      s.op.reset();
      --in_flight_;
    }
  }

  int fd_;
  io_uring ring_{};
  bool ring_ready_ = false;
  UniqueFd event_;
  std::vector<Slot> slots_;  // by tag
  std::vector<BlockCompletion> inline_done_;
  std::size_t in_flight_ = 0;
};

}  // namespace

Result<std::unique_ptr<BlockEngine>> BlockEngine::create_uring(int fd, unsigned depth) {
  auto e = std::make_unique<UringEngine>(fd, depth);
  KILN_CHECK(e->init(depth));
  return std::unique_ptr<BlockEngine>(std::move(e));
}

std::unique_ptr<BlockEngine> BlockEngine::create_sync(int fd) { return std::make_unique<SyncEngine>(fd); }

}  // namespace kiln::virtio
