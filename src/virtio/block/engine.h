#pragma once
// The block device's I/O engines: io_uring (liburing), with many reads and flushes in flight
// (buffered writes are copied at submit, see engine.cpp), and a
// synchronous one (preadv/pwritev on the VMM thread) for hosts without io_uring. Both take the
// same operations and hand back completions by tag; the device does not know which it has.
#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"

namespace kiln::virtio {

struct BlockOp {
  enum class Kind { kRead, kWrite, kFlush, kDiscard, kWriteZeroes };
  Kind kind = Kind::kRead;
  std::uint64_t offset = 0;
  std::uint64_t len = 0;
  std::vector<iovec> iov;  // kRead, kWrite: guest buffers, valid until the op completes
  bool sync_after = false; // kWrite: on stable storage (fdatasync) before it completes
  std::uint16_t tag = 0;   // unique among the ops in flight
};

struct BlockCompletion {
  std::uint16_t tag = 0;
  int result = 0;  // >= 0: done (bytes for reads and writes); < 0: -errno
};

class BlockEngine {
 public:
  enum class Kind { kUring, kSync };
  virtual ~BlockEngine() = default;
  [[nodiscard]] virtual Kind kind() const = 0;
  // Starts `op` (the sync engine runs it now). Its completion comes from take_completions().
  [[nodiscard]] virtual Result<void> submit(BlockOp op) = 0;
  // Hands what submit() queued to the kernel (one system call for a batch).
  virtual void kick() {}
  // Appends the completions ready now; never blocks.
  virtual void take_completions(std::vector<BlockCompletion>& out) = 0;
  // Waits for every op in flight and appends their completions.
  virtual void drain(std::vector<BlockCompletion>& out) = 0;
  // Readable when completions are waiting (-1: none ever are; completions are ready at submit).
  [[nodiscard]] virtual int completion_fd() const { return -1; }
  [[nodiscard]] virtual std::size_t in_flight() const = 0;

  // fdatasync calls made (flushes and write-through writes), for tests and metrics.
  [[nodiscard]] std::uint64_t fdatasyncs() const { return fdatasyncs_.load(std::memory_order_relaxed); }

  // `depth`: the most ops in flight at once (the queue size).
  static Result<std::unique_ptr<BlockEngine>> create_uring(int fd, unsigned depth);
  static std::unique_ptr<BlockEngine> create_sync(int fd);

 protected:
  std::atomic<std::uint64_t> fdatasyncs_{0};
};

// What the sync engine does for one op, also used by the io_uring engine for the rare ops it
// runs inline (buffered writes, discard, write zeroes): a result as BlockCompletion::result.
int run_block_op_sync(int fd, const BlockOp& op, std::atomic<std::uint64_t>& fdatasyncs);

}  // namespace kiln::virtio
