#pragma once
// Building firmware structures byte by byte (ACPI tables, AML, the MP table): a little-endian
// writer over a growing vector, and the 8-bit sum their checksums are defined by.
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace kiln {

class ByteWriter {
 public:
  explicit ByteWriter(std::vector<std::uint8_t>& out) : b_(out) {}
  void le(std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) b_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void u8(std::uint64_t v) { le(v, 1); }
  void u16(std::uint64_t v) { le(v, 2); }
  void u32(std::uint64_t v) { le(v, 4); }
  void u64(std::uint64_t v) { le(v, 8); }
  // Exactly n characters of s, padded with spaces (the fixed-width ids firmware tables carry).
  void chars(std::string_view s, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) b_.push_back(i < s.size() ? static_cast<std::uint8_t>(s[i]) : ' ');
  }
  void zeros(std::size_t n) { b_.insert(b_.end(), n, 0); }
  void bytes(std::span<const std::uint8_t> v) { b_.insert(b_.end(), v.begin(), v.end()); }
  // Overwrites `bytes` bytes at `offset` (a length or count known only at the end).
  void patch_le(std::size_t offset, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) b_.at(offset + i) = static_cast<std::uint8_t>(v >> (8 * i));
  }
  [[nodiscard]] std::size_t size() const { return b_.size(); }

 private:
  std::vector<std::uint8_t>& b_;
};

// The 8-bit sum of all bytes; a structure with a correct checksum byte sums to zero.
inline std::uint8_t sum8(std::span<const std::uint8_t> bytes) {
  std::uint8_t s = 0;
  for (auto c : bytes) s = static_cast<std::uint8_t>(s + c);
  return s;
}

}  // namespace kiln
