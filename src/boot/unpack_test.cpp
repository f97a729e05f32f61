#include "boot/unpack.h"

#include <bzlib.h>
#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <random>

namespace kiln::boot {
namespace {

// Something kernel-like: compressible text with random stretches.
std::vector<std::byte> sample(std::size_t size) {
  std::vector<std::byte> d(size);
  std::mt19937 rng(5);
  for (std::size_t i = 0; i < size; ++i)
    d[i] = std::byte{static_cast<unsigned char>((i / 4096) % 3 == 0 ? rng() & 0xff : "kiln vmlinux "[i % 13])};
  return d;
}

void append_size(std::vector<std::byte>& c, std::size_t n) {  // as the kernel's build does
  const auto v = static_cast<std::uint32_t>(n);
  const auto* b = reinterpret_cast<const std::byte*>(&v);
  c.insert(c.end(), b, b + 4);
}

std::vector<std::byte> gzip_of(const std::vector<std::byte>& d) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::vector<std::byte> out(deflateBound(&z, d.size()));
  z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(d.data()));
  z.avail_in = static_cast<uInt>(d.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::vector<std::byte> xz_of(const std::vector<std::byte>& d, bool alone) {
  lzma_stream s = LZMA_STREAM_INIT;
  lzma_options_lzma opt;
  lzma_lzma_preset(&opt, 1);
  EXPECT_EQ(alone ? lzma_alone_encoder(&s, &opt) : lzma_easy_encoder(&s, 1, LZMA_CHECK_CRC32), LZMA_OK);
  std::vector<std::byte> out(d.size() + (1 << 20));
  s.next_in = reinterpret_cast<const std::uint8_t*>(d.data());
  s.avail_in = d.size();
  s.next_out = reinterpret_cast<std::uint8_t*>(out.data());
  s.avail_out = out.size();
  EXPECT_EQ(lzma_code(&s, LZMA_FINISH), LZMA_STREAM_END);
  out.resize(s.total_out);
  lzma_end(&s);
  return out;
}

std::vector<std::byte> lz4_legacy_of(const std::vector<std::byte>& d) {
  const std::size_t block = 8 << 20;
  std::vector<std::byte> out(4);
  const std::uint32_t magic = 0x184c2102;
  std::memcpy(out.data(), &magic, 4);
  for (std::size_t at = 0; at < d.size(); at += block) {
    const int n = static_cast<int>(std::min(block, d.size() - at));
    std::vector<char> c(static_cast<std::size_t>(LZ4_compressBound(n)));
    const int got = LZ4_compress_default(reinterpret_cast<const char*>(d.data() + at), c.data(), n,
                                         static_cast<int>(c.size()));
    EXPECT_GT(got, 0);
    const auto len = static_cast<std::uint32_t>(got);
    const auto* lb = reinterpret_cast<const std::byte*>(&len);
    out.insert(out.end(), lb, lb + 4);
    out.insert(out.end(), reinterpret_cast<const std::byte*>(c.data()), reinterpret_cast<const std::byte*>(c.data()) + got);
  }
  return out;
}

std::vector<std::byte> zstd_of(const std::vector<std::byte>& d) {
  std::vector<std::byte> out(ZSTD_compressBound(d.size()));
  const std::size_t n = ZSTD_compress(out.data(), out.size(), d.data(), d.size(), 3);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

std::vector<std::byte> bzip2_of(const std::vector<std::byte>& d) {
  std::vector<std::byte> out(d.size() + d.size() / 50 + 1024);
  auto n = static_cast<unsigned>(out.size());
  EXPECT_EQ(BZ2_bzBuffToBuffCompress(reinterpret_cast<char*>(out.data()), &n,
                                     reinterpret_cast<char*>(const_cast<std::byte*>(d.data())),
                                     static_cast<unsigned>(d.size()), 1, 0, 0),
            BZ_OK);
  out.resize(n);
  return out;
}

struct Method {
  const char* name;
  Compression kind;
  std::vector<std::byte> (*compress)(const std::vector<std::byte>&);
  std::size_t size = 1 << 20;  // LZ4: past one 8 MiB block
};

class Unpack : public ::testing::TestWithParam<Method> {};

TEST_P(Unpack, EveryKernelMethodRoundTripsWithTheAppendedSizeAfterIt) {
  const auto original = sample(GetParam().size);
  auto c = GetParam().compress(original);
  append_size(c, original.size());
  EXPECT_EQ(detect_compression(c), GetParam().kind);
  auto out = decompress(c, 64 << 20);
  ASSERT_TRUE(out) << out.error().message();
  EXPECT_TRUE(*out == original) << "unpacked " << out->size() << " bytes of " << original.size();
}

TEST_P(Unpack, ACutPayloadIsAnErrorNotAShortKernel) {
  const auto original = sample(GetParam().size);
  const auto c = GetParam().compress(original);
  auto out = decompress(std::span(c).first(c.size() / 2), 64 << 20);
  EXPECT_FALSE(out) << GetParam().name << " gave " << (out ? out->size() : 0) << " bytes";
}

TEST_P(Unpack, APayloadThatUnpacksPastTheLimitStopsThere) {
  const auto original = sample(GetParam().size);
  const auto c = GetParam().compress(original);
  auto out = decompress(c, original.size() / 2);
  ASSERT_FALSE(out);
  EXPECT_NE(out.error().message().find(fmt::format("unpacks to more than {} MiB", (original.size() / 2) >> 20)),
            std::string::npos)
      << out.error().message();
}

INSTANTIATE_TEST_SUITE_P(
    Methods, Unpack,
    ::testing::Values(Method{"gzip", Compression::kGzip, gzip_of},
                      Method{"xz", Compression::kXz, [](const std::vector<std::byte>& d) { return xz_of(d, false); }},
                      Method{"lzma", Compression::kLzma, [](const std::vector<std::byte>& d) { return xz_of(d, true); }},
                      Method{"lz4", Compression::kLz4, lz4_legacy_of, 9 << 20}, Method{"zstd", Compression::kZstd, zstd_of},
                      Method{"bzip2", Compression::kBzip2, bzip2_of}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(UnpackErrors, GarbageAndLzoAreNamed) {
  const std::vector<std::byte> junk(64, std::byte{0x33});
  auto a = decompress(junk, 1 << 20);
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message().find("not one kiln knows (it starts 33 33 33 33)"), std::string::npos)
      << a.error().message();
  std::vector<std::byte> lzo{std::byte{0x89}, std::byte{0x4c}, std::byte{0x5a}, std::byte{0x4f}, std::byte{0}};
  auto b = decompress(lzo, 1 << 20);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message().find("LZO"), std::string::npos);
}

TEST(UnpackErrors, APayloadOutsideTheFileIsRefused) {
  std::vector<std::byte> f(0x1000);
  f[0x1f1] = std::byte{1};  // setup_sects
  f[0x206] = std::byte{0x0f};
  f[0x207] = std::byte{0x02};  // version 2.15
  const std::uint32_t off = 0x100, len = 0x10000;
  std::memcpy(f.data() + 0x248, &off, 4);
  std::memcpy(f.data() + 0x24c, &len, 4);
  auto p = bzimage_payload(f);
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message().find("not inside the 4096-byte file"), std::string::npos) << p.error().message();
  const std::uint32_t small = 0x10;
  std::memcpy(f.data() + 0x24c, &small, 4);
  p = bzimage_payload(f);
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(p->data(), f.data() + 0x400 + 0x100) << "after (1 + setup_sects) sectors, at payload_offset";
}


// A newc cpio archive, as `cpio -H newc` writes it: each entry a 110-byte header of hex fields,
// its name and data each padded to 4 bytes, then the TRAILER!!! entry and zeros to 512 bytes.
std::vector<std::byte> cpio_of(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string out;
  auto entry = [&](const std::string& name, const std::string& data, unsigned mode) {
    out += fmt::format("070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
                       out.size(), mode, 0, 0, 1, 0, data.size(), 0, 0, 0, 0, name.size() + 1, 0);
    out += name;
    out += '\0';
    out.resize((out.size() + 3) & ~std::size_t{3}, '\0');
    out += data;
    out.resize((out.size() + 3) & ~std::size_t{3}, '\0');
  };
  for (const auto& [name, data] : files) entry(name, data, 0100644);
  entry("TRAILER!!!", "", 0);
  out.resize((out.size() + 511) & ~std::size_t{511}, '\0');
  const auto* b = reinterpret_cast<const std::byte*>(out.data());
  return {b, b + out.size()};
}

std::vector<std::byte> operator+(std::vector<std::byte> a, const std::vector<std::byte>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::string text_of(const std::vector<std::byte>& d) { return {reinterpret_cast<const char*>(d.data()), d.size()}; }

TEST(UnpackInitrd, PlainCpioIsLeftAsItIs) {
  const auto plain = cpio_of({{"init", "#!/bin/sh\n"}}) + cpio_of({{"etc/motd", "hello"}});
  auto u = unpack_initrd(plain, 64 << 20);
  ASSERT_TRUE(u) << u.error().message();
  EXPECT_FALSE(*u) << "nothing compressed: nothing to do";
}

TEST_P(Unpack, AnInitrdCompressedWithTheMethodBecomesPlainCpio) {
  const auto main = cpio_of({{"init", "#!/bin/sh\necho hi\n"}, {"lib/big", text_of(sample(300000))}});
  auto u = unpack_initrd(GetParam().compress(main), 64 << 20);
  if (GetParam().kind == Compression::kLz4) {  // its legacy frames have no end: left to the guest's kernel
    ASSERT_FALSE(u);
    EXPECT_NE(u.error().message().find("lz4-compressed"), std::string::npos) << u.error().message();
    return;
  }
  ASSERT_TRUE(u) << u.error().message();
  ASSERT_TRUE(*u);
  EXPECT_EQ((*u)->method, GetParam().kind);
  EXPECT_TRUE((*u)->bytes == main) << (*u)->bytes.size() << " bytes against " << main.size();
  EXPECT_NE((*u)->describe().find(std::string(GetParam().name)), std::string::npos) << (*u)->describe();
}

TEST(UnpackInitrd, AnEarlyPlainArchiveThenCompressedPartsAsDebianAndDracutMakeThem) {
  // The early microcode archive uncompressed, then the main archive compressed, then another
  // compressed part after zero padding; the kernel reads the parts in order.
  const auto early = cpio_of({{"kernel/x86/microcode/AuthenticAMD.bin", "ucode"}});
  const auto main = cpio_of({{"init", "#!/bin/sh\n"}, {"bin/sh", text_of(sample(70001))}});
  const auto extra = cpio_of({{"conf/extra", std::string(13, 'x')}});
  auto z = zstd_of(main);
  z.resize(z.size() + 3, std::byte{0});  // zeros after a compressed part are padding
  auto g = gzip_of(extra);
  auto u = unpack_initrd(early + z + g, 64 << 20);
  ASSERT_TRUE(u) << u.error().message();
  ASSERT_TRUE(*u);
  EXPECT_TRUE((*u)->bytes == early + main + extra) << (*u)->bytes.size();
  EXPECT_EQ((*u)->compressed_size, early.size() + z.size() + g.size());
}

TEST(UnpackInitrd, AnUnpackedPartStartsAtAMultipleOfFour) {
  // The kernel reads a cpio header only at an offset that is a multiple of 4; a compressed part
  // whose output is not a multiple of 4 long is followed by zeros before the next part.
  auto odd = cpio_of({{"a", "b"}});
  odd.resize(odd.size() - 1);  // 511 bytes: its trailer's padding cut short by one
  const auto next = cpio_of({{"c", "d"}});
  auto u = unpack_initrd(gzip_of(odd) + xz_of(next, false), 64 << 20);
  ASSERT_TRUE(u) << u.error().message();
  ASSERT_TRUE(*u);
  auto want = odd;
  want.push_back(std::byte{0});
  EXPECT_TRUE((*u)->bytes == want + next);
  // The same when a plain archive follows.
  u = unpack_initrd(gzip_of(odd) + next, 64 << 20);
  ASSERT_TRUE(u) << u.error().message();
  ASSERT_TRUE(*u);
  EXPECT_TRUE((*u)->bytes == want + next);
}

TEST(UnpackInitrd, WhatKilnCannotReadIsLeftToTheGuestWithTheReason) {
  const auto main = cpio_of({{"init", text_of(sample(100000))}});
  struct Case {
    std::vector<std::byte> initrd;
    std::string why;
  };
  auto cut = zstd_of(main);
  cut.resize(cut.size() / 2);
  auto bad_header = cpio_of({{"init", "x"}});
  bad_header[20] = std::byte{'z'};  // a hex field that is not hex
  const std::vector<Case> cases = {
      {lz4_legacy_of(main), "lz4-compressed: kiln leaves that to the guest"},
      {main + std::vector<std::byte>(16, std::byte{0x33}), "neither cpio nor compressed data"},
      {cut, "zstd"},
      {bad_header, "a cpio archive at byte 0 has a header kiln cannot read"},
      {std::vector<std::byte>(main.begin(), main.begin() + 200), "a cpio archive at byte 0"},
      {zstd_of(main), "unpacks to more than"},
  };
  for (const auto& c : cases) {
    auto u = unpack_initrd(c.initrd, c.why == "unpacks to more than" ? main.size() / 2 : 64 << 20);
    ASSERT_FALSE(u) << c.why;
    EXPECT_NE(u.error().message().find(c.why), std::string::npos) << u.error().message();
  }
}

}  // namespace
}  // namespace kiln::boot
