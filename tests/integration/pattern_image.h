#pragma once
// Scratch disk images for the virtio integration tests.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace kiln::test {

// A scratch image: byte i of sector s is (s * 7 + i) & 0xff, as the guest's checks expect.
class PatternImage {
 public:
  explicit PatternImage(std::size_t size, bool zeros = false) {
    path_ = ::testing::TempDir() + "kiln-virtio-" + std::to_string(::getpid()) + "-" + std::to_string(next_++) + ".img";
    std::vector<char> b(size, 0);
    if (!zeros)
      for (std::size_t i = 0; i < size; ++i) b[i] = static_cast<char>((i / 512) * 7 + i % 512);
    std::ofstream(path_, std::ios::binary).write(b.data(), static_cast<std::streamsize>(size));
  }
  ~PatternImage() { std::filesystem::remove(path_); }
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::vector<std::uint8_t> bytes(std::size_t off, std::size_t len) const {
    std::vector<std::uint8_t> out(len);
    std::ifstream f(path_, std::ios::binary);
    f.seekg(static_cast<std::streamoff>(off));
    f.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(len));
    return out;
  }

 private:
  std::string path_;
  static inline int next_ = 0;
};

}  // namespace kiln::test
