#include "virtio/block/block.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "virtio/queue/mock_driver.h"

namespace kiln::virtio {
namespace {

constexpr std::uint64_t kRing = 0x10000;
constexpr std::uint64_t kHdr = 0x40000;     // request headers, 16 bytes apart
constexpr std::uint64_t kStatus = 0x50000;  // status bytes, one per request
constexpr std::uint64_t kData = 0x100000;   // data buffers

class NullInterrupt : public VirtioInterrupt {
 public:
  void used_buffers(std::uint16_t) override { ++used; }
  void config_changed() override {}
  int used = 0;
};

// A scratch image file holding `size` bytes: byte i of sector s is (s * 7 + i) & 0xff.
struct TempImage {
  explicit TempImage(std::uint64_t size) {
    char name[] = "/tmp/kiln-blk-XXXXXX";
    const int fd = ::mkstemp(name);
    path = name;
    std::vector<std::uint8_t> data(size);
    for (std::uint64_t i = 0; i < size; ++i) data[i] = static_cast<std::uint8_t>((i / 512) * 7 + i % 512);
    EXPECT_EQ(::write(fd, data.data(), size), static_cast<ssize_t>(size));
    ::close(fd);
  }
  ~TempImage() { std::filesystem::remove(path); }
  std::vector<std::uint8_t> bytes(std::uint64_t off, std::uint64_t len) const {
    std::vector<std::uint8_t> out(len);
    std::ifstream f(path, std::ios::binary);
    f.seekg(static_cast<std::streamoff>(off));
    f.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(len));
    return out;
  }
  std::string path;
};

class BlockTest : public ::testing::TestWithParam<BlockEngine::Kind> {
 protected:
  void make(bool read_only = false, bool unsafe = false, std::uint64_t size = 64 * 1024) {
    image = std::make_unique<TempImage>(size);
    auto img = DiskImage::open(image->path, read_only, "--disk path");
    ASSERT_TRUE(img.has_value()) << img.error().message();
    std::unique_ptr<BlockEngine> engine;
    if (GetParam() == BlockEngine::Kind::kUring) {
      auto e = BlockEngine::create_uring(img->fd.get(), 256);
      if (!e) GTEST_SKIP() << "io_uring is not available here: " << e.error().message();
      engine = std::move(*e);
    } else {
      engine = BlockEngine::create_sync(img->fd.get());
    }
    dev = std::make_unique<BlockDevice>(BlockConfig{.id = "d0", .serial = "kiln-serial-0123456789", .cache_unsafe = unsafe},
                                        std::move(*img), std::move(engine));
    queues.clear();
    queues.emplace_back(256);
    drv = std::make_unique<MockDriver>(mem, queues[0], 256, kRing);
    features = dev->features() & ~BlockDevice::kFeatureConfigWce;
    activate();
  }
  void activate() {
    queues[0].set_features(features);
    ASSERT_TRUE(dev->activate({.mem = &mem, .queues = queues, .interrupt = &irq, .features = features}).has_value());
  }
  // Makes a request available: header, then `data` (device-writable if `in`), then a status byte.
  void request(std::uint32_t type, std::uint64_t sector, std::uint32_t data_len, bool in, int n = 0) {
    const std::uint64_t hdr = kHdr + 16ull * n;
    ASSERT_TRUE(mem.write_obj(GuestAddress{hdr}, std::uint32_t{type}).has_value());
    ASSERT_TRUE(mem.write_obj(GuestAddress{hdr + 4}, std::uint32_t{0}).has_value());
    ASSERT_TRUE(mem.write_obj(GuestAddress{hdr + 8}, sector).has_value());
    ASSERT_TRUE(mem.write_obj(GuestAddress{kStatus + n}, std::uint8_t{0xee}).has_value());
    std::vector<MockDriver::Segment> segs{{hdr, 16}};
    if (data_len) segs.push_back({kData + 0x10000ull * n, data_len, in});
    segs.push_back({kStatus + n, 1, true});
    drv->add_chain(segs);
  }
  Result<void> run() {
    KILN_CHECK(dev->queue_notify(0));
    // The io_uring engine completes later: wait for the completions as the event loop would.
    for (int i = 0; i < 1000 && dev->engine().in_flight() > 0; ++i) {
      if (dev->completion_fd() >= 0) {
        pollfd p{dev->completion_fd(), POLLIN, 0};
        ::poll(&p, 1, 100);
      }
      KILN_CHECK(dev->backend_ready());
    }
    return {};
  }
  std::uint8_t status(int n = 0) { return mem.read_obj<std::uint8_t>(GuestAddress{kStatus + n}).value(); }
  std::vector<std::uint8_t> guest(std::uint64_t at, std::uint64_t len) {
    std::vector<std::uint8_t> out(len);
    EXPECT_TRUE(mem.read(GuestAddress{at}, std::as_writable_bytes(std::span(out))).has_value());
    return out;
  }

  GuestMemory mem = std::move(GuestMemory::create(std::vector<RegionLayout>{{0, 0x400000}}).value());
  std::unique_ptr<TempImage> image;
  std::unique_ptr<BlockDevice> dev;
  std::vector<Queue> queues;
  std::unique_ptr<MockDriver> drv;
  NullInterrupt irq;
  std::uint64_t features = 0;
};

TEST_P(BlockTest, AReadReturnsTheImagesBytes) {
  make();
  request(BlockDevice::kIn, 3, 1024, true);
  ASSERT_TRUE(run().has_value());
  EXPECT_EQ(status(), BlockDevice::kOk);
  EXPECT_EQ(guest(kData, 1024), image->bytes(3 * 512, 1024));
  EXPECT_EQ(drv->used(0).len, 1025u);
  EXPECT_EQ(irq.used, 1);
}

TEST_P(BlockTest, AWriteReachesTheFile) {
  make();
  std::vector<std::uint8_t> pattern(512, 0x5a);
  ASSERT_TRUE(mem.write(GuestAddress{kData}, std::as_bytes(std::span(pattern))).has_value());
  request(BlockDevice::kOut, 10, 512, false);
  ASSERT_TRUE(run().has_value());
  EXPECT_EQ(status(), BlockDevice::kOk);
  EXPECT_EQ(image->bytes(10 * 512, 512), pattern);
  EXPECT_EQ(image->bytes(11 * 512, 4), std::vector<std::uint8_t>({77, 78, 79, 80})) << "the next sector is untouched";
}

TEST_P(BlockTest, AFlushReachesFdatasync) {
  make();
  request(BlockDevice::kFlush, 0, 0, false);
  ASSERT_TRUE(run().has_value());
  EXPECT_EQ(status(), BlockDevice::kOk);
  EXPECT_EQ(dev->engine().fdatasyncs(), 1u);
}

TEST_P(BlockTest, CacheUnsafeAcknowledgesAFlushWithoutFdatasync) {
  make(false, true);
  request(BlockDevice::kFlush, 0, 0, false);
  ASSERT_TRUE(run().has_value());
  EXPECT_EQ(status(), BlockDevice::kOk);
  EXPECT_EQ(dev->engine().fdatasyncs(), 0u);
}

TEST_P(BlockTest, WritesAreWrittenThroughWhenTheDriverClearsWriteback) {
  make();
  features |= BlockDevice::kFeatureConfigWce;
  activate();
  std::uint8_t b = 0;
  dev->write_config(32, std::as_bytes(std::span(&b, 1)));
  EXPECT_TRUE(dev->write_through());
  request(BlockDevice::kOut, 0, 512, false);
  ASSERT_TRUE(run().has_value());
  EXPECT_EQ(status(), BlockDevice::kOk);
  EXPECT_EQ(dev->engine().fdatasyncs(), 1u) << "each write is synced before it completes";
}

TEST_P(BlockTest, WithoutFlushNegotiatedEveryWriteIsSynced) {
  make();
  features &= ~BlockDevice::kFeatureFlush;
  activate();
  request(BlockDevice::kOut, 0, 512, false);
  ASSERT_TRUE(run().has_value());
  EXPECT_EQ(dev->engine().fdatasyncs(), 1u);
}

TEST_P(BlockTest, GetIdGivesTheFirst20BytesOfTheSerial) {
  make();
  request(BlockDevice::kGetId, 0, 20, true);
  ASSERT_TRUE(run().has_value());
  EXPECT_EQ(status(), BlockDevice::kOk);
  const auto id = guest(kData, 20);
  EXPECT_EQ(std::string(id.begin(), id.end()), std::string("kiln-serial-01234567"));
  EXPECT_EQ(drv->used(0).len, 21u);
}

TEST_P(BlockTest, DiscardAndWriteZeroesClearTheRange) {
  make();
  for (const auto type : {BlockDevice::kWriteZeroes, BlockDevice::kDiscard}) {
    const std::uint64_t sector = type == BlockDevice::kDiscard ? 16 : 4;
    ASSERT_TRUE(mem.write_obj(GuestAddress{kData}, sector).has_value());
    ASSERT_TRUE(mem.write_obj(GuestAddress{kData + 8}, std::uint32_t{8}).has_value());  // 8 sectors = 4 KiB
    ASSERT_TRUE(mem.write_obj(GuestAddress{kData + 12}, std::uint32_t{0}).has_value());
    request(type, 0, 16, false);
    ASSERT_TRUE(run().has_value());
    EXPECT_EQ(status(), BlockDevice::kOk) << type;
    EXPECT_EQ(image->bytes(sector * 512, 4096), std::vector<std::uint8_t>(4096, 0)) << type;
  }
  EXPECT_EQ(image->bytes(12 * 512, 2), std::vector<std::uint8_t>({84, 85})) << "between the ranges: untouched";
}

TEST_P(BlockTest, AReadOnlyDiskRefusesEveryChangeAndTheFileStaysTheSame) {
  make(true);
  EXPECT_TRUE(dev->features() & BlockDevice::kFeatureRo);
  const auto before = image->bytes(0, 64 * 1024);
  ASSERT_TRUE(mem.fill(GuestAddress{kData}, std::byte{1}, 0x30000).has_value());
  request(BlockDevice::kOut, 0, 512, false, 0);
  request(BlockDevice::kDiscard, 0, 16, false, 1);
  request(BlockDevice::kWriteZeroes, 0, 16, false, 2);
  request(BlockDevice::kIn, 0, 512, true, 3);
  ASSERT_TRUE(run().has_value());
  EXPECT_EQ(status(0), BlockDevice::kIoErr);
  EXPECT_EQ(status(1), BlockDevice::kIoErr);
  EXPECT_EQ(status(2), BlockDevice::kIoErr);
  EXPECT_EQ(status(3), BlockDevice::kOk) << "reads still work";
  EXPECT_EQ(image->bytes(0, 64 * 1024), before);
}

TEST_P(BlockTest, RequestsOutsideTheDiskFailAndTheDeviceGoesOn) {
  make();  // 128 sectors
  request(BlockDevice::kIn, 128, 512, true, 0);            // starts past the end
  request(BlockDevice::kIn, 127, 1024, true, 1);           // runs past the end
  request(BlockDevice::kIn, ~0ull / 256, 512, true, 2);    // a sector whose byte offset overflows
  request(BlockDevice::kIn, 0, 100, true, 3);              // not whole sectors
  request(0x77, 0, 0, false, 4);                           // unknown type
  request(BlockDevice::kIn, 127, 512, true, 5);            // the last sector: fine
  ASSERT_TRUE(run().has_value());
  for (int i = 0; i < 4; ++i) EXPECT_EQ(status(i), BlockDevice::kIoErr) << i;
  EXPECT_EQ(status(4), BlockDevice::kUnsupp);
  EXPECT_EQ(status(5), BlockDevice::kOk);
}

TEST_P(BlockTest, ManyRequestsInFlightAllComplete) {
  make(false, false, 1 << 20);
  for (int i = 0; i < 32; ++i) request(BlockDevice::kIn, 64ull * i, 4096, true, i);
  ASSERT_TRUE(run().has_value());
  EXPECT_EQ(drv->used_idx(), 32);
  for (int i = 0; i < 32; ++i) {
    EXPECT_EQ(status(i), BlockDevice::kOk);
    EXPECT_EQ(guest(kData + 0x10000ull * i, 8), image->bytes(64ull * i * 512, 8));
  }
}

TEST_P(BlockTest, AHeaderCutShortBreaksTheQueue) {
  make();
  drv->add_chain({{kHdr, 8}, {kStatus, 1, true}});
  EXPECT_FALSE(run().has_value());
}

TEST_P(BlockTest, AStatusByteInADeviceReadableBufferBreaksTheQueue) {
  make();
  drv->add_chain({{kHdr, 16}, {kData, 512}, {kStatus, 1}});
  auto r = run();
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("status"), std::string::npos);
}

TEST_P(BlockTest, TheCapacityIgnoresATailShorterThanASector) {
  make(false, false, 4096 + 100);
  std::uint64_t cap = 0;
  dev->read_config(0, std::as_writable_bytes(std::span(&cap, 1)));
  EXPECT_EQ(cap, 8u);
}

TEST_P(BlockTest, AResetWaitsForRequestsInFlight) {
  make(false, false, 1 << 20);
  for (int i = 0; i < 16; ++i) request(BlockDevice::kIn, 8ull * i, 4096, true, i);
  ASSERT_TRUE(dev->queue_notify(0).has_value());
  dev->reset();
  EXPECT_EQ(dev->engine().in_flight(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Engines, BlockTest, ::testing::Values(BlockEngine::Kind::kUring, BlockEngine::Kind::kSync),
                         [](const auto& p) { return std::string(p.param == BlockEngine::Kind::kUring ? "Uring" : "Sync"); });

// ---- The io_uring engine's split: buffered writes copied at submit, the rest on the ring ----

TEST(UringEngineTest, ABufferedWriteIsDoneAtSubmitAndAReadGoesToTheRing) {
  TempImage t(64 * 1024);
  UniqueFd fd(::open(t.path.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(fd);
  auto e = BlockEngine::create_uring(fd.get(), 8);
  if (!e) GTEST_SKIP() << "io_uring is not available here: " << e.error().message();
  BlockEngine& engine = **e;
  std::vector<std::uint8_t> out(4096, 0xa5), in(4096, 0);
  ASSERT_TRUE(engine.submit({.kind = BlockOp::Kind::kWrite, .offset = 8192, .len = 4096,
                             .iov = {{out.data(), out.size()}}, .tag = 1}));
  EXPECT_EQ(engine.in_flight(), 0u) << "the write was copied before submit returned";
  EXPECT_EQ(t.bytes(8192, 4096), out) << "and it is in the file";
  ASSERT_TRUE(engine.submit({.kind = BlockOp::Kind::kRead, .offset = 8192, .len = 4096,
                             .iov = {{in.data(), in.size()}}, .tag = 2}));
  ASSERT_TRUE(engine.submit({.kind = BlockOp::Kind::kWrite, .offset = 0, .len = 4096,
                             .iov = {{out.data(), out.size()}}, .sync_after = true, .tag = 3}));
  EXPECT_EQ(engine.in_flight(), 2u) << "a read and a write-through write are on the ring";
  std::vector<BlockCompletion> done;
  engine.drain(done);
  ASSERT_EQ(done.size(), 3u);
  for (const BlockCompletion& c : done) EXPECT_EQ(c.result, 4096) << "tag " << c.tag;
  EXPECT_EQ(in, out);
  EXPECT_EQ(engine.fdatasyncs(), 1u) << "only the write-through write was synced";
}

// ---- Opening images: each mistake is one clear line ----

TEST(DiskImageTest, AMissingFileSaysSo) {
  auto r = DiskImage::open("/nonexistent/disk.img", false, "--disk path");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("--disk path /nonexistent/disk.img: no such file"), std::string::npos)
      << r.error().message();
}

TEST(DiskImageTest, ADirectoryIsRefused) {
  auto r = DiskImage::open("/tmp", false, "path_on_host");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("is a directory"), std::string::npos);
}

TEST(DiskImageTest, AnImageOpenedForWritingCannotBeOpenedAgain) {
  TempImage t(4096);
  auto a = DiskImage::open(t.path, false, "--disk path");
  ASSERT_TRUE(a.has_value());
  auto b = DiskImage::open(t.path, false, "--disk path");
  ASSERT_FALSE(b.has_value());
  EXPECT_NE(b.error().message().find("in use"), std::string::npos) << b.error().message();
  auto c = DiskImage::open(t.path, true, "--disk path");
  EXPECT_FALSE(c.has_value()) << "nor read while another writes it";
  a = std::unexpected(Error{});
  EXPECT_TRUE(DiskImage::open(t.path, false, "--disk path").has_value()) << "free again once closed";
}

TEST(DiskImageTest, ReadOnlyOpensShareTheImage) {
  TempImage t(4096);
  auto a = DiskImage::open(t.path, true, "--disk path");
  auto b = DiskImage::open(t.path, true, "--disk path");
  EXPECT_TRUE(a.has_value() && b.has_value());
}

TEST(DiskImageTest, AWritableDiskOnAFileThatCannotBeWrittenSaysHowToFixIt) {
  TempImage t(4096);
  // Immutable: not even root may open it for writing.
  const int fd = ::open(t.path.c_str(), O_RDONLY);
  int flags = 0;
  const bool immutable = ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 &&
                         (flags |= FS_IMMUTABLE_FL, ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0);
  if (!immutable) {
    ::close(fd);
    GTEST_SKIP() << "cannot make a file immutable here (needs CAP_LINUX_IMMUTABLE and a file system with the flag)";
  }
  auto r = DiskImage::open(t.path, false, "--disk path");
  flags &= ~FS_IMMUTABLE_FL;
  ::ioctl(fd, FS_IOC_SETFLAGS, &flags);
  ::close(fd);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("read-only"), std::string::npos) << r.error().message();
  EXPECT_TRUE(DiskImage::open(t.path, true, "--disk path").has_value());
}

}  // namespace
}  // namespace kiln::virtio
