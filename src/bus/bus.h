#pragma once
// A bus maps address ranges (port I/O or MMIO) to devices. An access goes to the device whose
// range holds all of it, with the offset from the range's base; anything else is unclaimed
// (reads see all ones, writes are dropped, as on a PC) and counted.
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>

#include "base/error.h"

namespace kiln {

class BusDevice {
 public:
  virtual ~BusDevice() = default;
  virtual void read(std::uint64_t offset, std::span<std::byte> data) = 0;
  virtual void write(std::uint64_t offset, std::span<const std::byte> data) = 0;
};

class Bus {
 public:
  explicit Bus(std::string name) : name_(std::move(name)) {}

  // Fails if the range is empty, wraps, or overlaps one already registered.
  Result<void> insert(std::shared_ptr<BusDevice> device, std::uint64_t base, std::uint64_t len);

  // True if a device handled the access. The device is called with the bus's lock released,
  // so devices do their own locking (vCPU threads call concurrently).
  bool read(std::uint64_t addr, std::span<std::byte> data) const;
  bool write(std::uint64_t addr, std::span<const std::byte> data) const;

  [[nodiscard]] std::uint64_t unclaimed_accesses() const { return unclaimed_.load(std::memory_order_relaxed); }

 private:
  struct Range {
    std::uint64_t len;
    std::shared_ptr<BusDevice> device;
  };
  // The device and offset for [addr, addr+len), or nullptr.
  std::shared_ptr<BusDevice> find(std::uint64_t addr, std::uint64_t len, std::uint64_t& offset) const;

  std::string name_;
  // Lookups (every exit) share the lock; only insert() takes it alone.
  mutable std::shared_mutex mu_;
  std::map<std::uint64_t, Range> ranges_;  // keyed by base
  mutable std::atomic<std::uint64_t> unclaimed_{0};
};

}  // namespace kiln
