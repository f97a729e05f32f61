#include "boot/unpack.h"

#include <bzlib.h>
#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>

#include "boot/boot_params.h"

namespace kiln::boot {

namespace {

bool starts(std::span<const std::byte> d, std::initializer_list<unsigned> magic) {
  if (d.size() < magic.size()) return false;
  std::size_t i = 0;
  for (unsigned m : magic)
    if (std::to_integer<unsigned>(d[i++]) != m) return false;
  return true;
}

std::uint32_t le32(std::span<const std::byte> d, std::size_t at) {
  std::uint32_t v = 0;
  std::memcpy(&v, d.data() + at, 4);
  return v;
}

// Output that grows in steps and never past `limit`.
struct Output {
  std::vector<std::byte> bytes;
  std::size_t used = 0;
  std::size_t limit;
  // Room for at least `want` more bytes (fewer near the limit); false at the limit.
  bool reserve(std::size_t want = 1 << 20) {
    if (used >= limit) return false;
    const std::size_t target = std::min(limit, used + std::max<std::size_t>(want, bytes.size() / 2));
    if (target > bytes.size()) bytes.resize(target);
    return true;
  }
  std::byte* tail() { return bytes.data() + used; }
  std::size_t room() const { return bytes.size() - used; }
  std::vector<std::byte> take() {
    bytes.resize(used);
    return std::move(bytes);
  }
};

Error too_big(std::string_view method, std::size_t limit) {
  return Error{{}, fmt::format("the {}-compressed data unpacks to more than {} MiB", method, limit >> 20)};
}

// Each decompressor stops at the end of its stream and, where `used_in` is given, says how many
// input bytes the stream took (an initramfs may go on after it).
Result<std::vector<std::byte>> gunzip(std::span<const std::byte> in, std::size_t limit, std::size_t* used_in) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return plain_error("zlib: cannot start inflating");
  Output out{.bytes = {}, .used = 0, .limit = limit};
  z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
  z.avail_in = static_cast<uInt>(std::min<std::size_t>(in.size(), UINT32_MAX));
  int r = Z_OK;
  while (r != Z_STREAM_END) {
    if (!out.reserve()) {
      inflateEnd(&z);
      return std::unexpected(too_big("gzip", limit));
    }
    z.next_out = reinterpret_cast<Bytef*>(out.tail());
    z.avail_out = static_cast<uInt>(std::min<std::size_t>(out.room(), UINT32_MAX));
    const uInt before = z.avail_out;
    r = inflate(&z, Z_NO_FLUSH);
    out.used += before - z.avail_out;
    if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR) {
      inflateEnd(&z);
      return plain_error("gzip: the payload is damaged ({})", z.msg ? z.msg : "inflate failed");
    }
    if (r == Z_BUF_ERROR && z.avail_in == 0) {
      inflateEnd(&z);
      return plain_error("gzip: the payload ends in the middle of the stream");
    }
  }
  if (used_in != nullptr) *used_in = z.total_in;
  inflateEnd(&z);
  return out.take();
}

// liblzma's own working memory (mostly the dictionary the stream asks for). Kernels are packed with
// dictionaries of 32 MiB (xz) to 64 MiB (lzma -9); a header asking for more is refused, not obeyed.
constexpr std::uint64_t kLzmaMemLimit = std::uint64_t{256} << 20;

Result<std::vector<std::byte>> unxz(std::span<const std::byte> in, std::size_t limit, bool alone,
                                    std::size_t* used_in) {
  lzma_stream s = LZMA_STREAM_INIT;
  const lzma_ret init = alone ? lzma_alone_decoder(&s, kLzmaMemLimit) : lzma_stream_decoder(&s, kLzmaMemLimit, 0);
  if (init != LZMA_OK) return plain_error("liblzma: cannot start decoding");
  const char* name = alone ? "lzma" : "xz";
  Output out{.bytes = {}, .used = 0, .limit = limit};
  s.next_in = reinterpret_cast<const std::uint8_t*>(in.data());
  s.avail_in = in.size();
  lzma_ret r = LZMA_OK;
  while (r != LZMA_STREAM_END) {
    if (!out.reserve()) {
      lzma_end(&s);
      return std::unexpected(too_big(name, limit));
    }
    s.next_out = reinterpret_cast<std::uint8_t*>(out.tail());
    s.avail_out = out.room();
    const std::size_t before = s.avail_out;
    r = lzma_code(&s, s.avail_in == 0 ? LZMA_FINISH : LZMA_RUN);
    out.used += before - s.avail_out;
    if (r != LZMA_OK && r != LZMA_STREAM_END) {
      lzma_end(&s);
      if (r == LZMA_MEMLIMIT_ERROR)
        return plain_error("{}: the payload asks for more than {} MiB of dictionary", name, kLzmaMemLimit >> 20);
      return plain_error("{}: the payload is damaged or cut short (liblzma error {})", name, static_cast<int>(r));
    }
  }
  if (used_in != nullptr) *used_in = s.total_in;
  lzma_end(&s);
  return out.take();
}

// The kernel's LZ4 is the legacy frame: a magic, then blocks of (32-bit compressed size, data),
// each at most 8 MiB unpacked; the build appends the unpacked size (4 bytes) after the last.
Result<std::vector<std::byte>> unlz4(std::span<const std::byte> in, std::size_t limit) {
  constexpr std::uint32_t kMagic = 0x184c2102;
  constexpr std::size_t kBlock = 8 << 20;
  Output out{.bytes = {}, .used = 0, .limit = limit};
  std::size_t at = 4;  // past the first magic
  while (in.size() - at > 4) {
    const std::uint32_t n = le32(in, at);
    at += 4;
    if (n == kMagic) continue;  // another frame, concatenated
    if (n > in.size() - at || n > static_cast<std::uint32_t>(LZ4_compressBound(kBlock)))
      return plain_error("lz4: a block of {} bytes runs past the payload: it is damaged or cut short", n);
    // A block unpacks to at most 8 MiB, and to no more than the limit leaves.
    if (!out.reserve(kBlock)) return std::unexpected(too_big("lz4", limit));
    const std::size_t room = std::min(out.room(), kBlock);
    const int got = LZ4_decompress_safe(reinterpret_cast<const char*>(in.data() + at), reinterpret_cast<char*>(out.tail()),
                                        static_cast<int>(n), static_cast<int>(room));
    if (got < 0 && room < kBlock) return std::unexpected(too_big("lz4", limit));
    if (got < 0) return plain_error("lz4: the payload is damaged (a block does not decode)");
    out.used += static_cast<std::size_t>(got);
    at += n;
  }
  return out.take();
}

Result<std::vector<std::byte>> unzstd(std::span<const std::byte> in, std::size_t limit, std::size_t* used_in) {
  ZSTD_DStream* d = ZSTD_createDStream();
  if (d == nullptr) return plain_error("libzstd: cannot start decoding");
  // The kernel's decompressor allows windows up to 128 MiB (zstd -22 --ultra).
  ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 27);
  Output out{.bytes = {}, .used = 0, .limit = limit};
  ZSTD_inBuffer ib{in.data(), in.size(), 0};
  for (;;) {
    if (!out.reserve()) {
      ZSTD_freeDStream(d);
      return std::unexpected(too_big("zstd", limit));
    }
    ZSTD_outBuffer ob{out.tail(), out.room(), 0};
    const std::size_t r = ZSTD_decompressStream(d, &ob, &ib);
    out.used += ob.pos;
    if (ZSTD_isError(r)) {
      const std::string why = ZSTD_getErrorName(r);
      ZSTD_freeDStream(d);
      return plain_error("zstd: the payload is damaged ({})", why);
    }
    if (r == 0) break;  // a frame ended; what follows is the appended size
    if (ib.pos == ib.size && ob.pos < ob.size) {
      ZSTD_freeDStream(d);
      return plain_error("zstd: the payload ends in the middle of a frame");
    }
  }
  if (used_in != nullptr) *used_in = ib.pos;
  ZSTD_freeDStream(d);
  return out.take();
}

Result<std::vector<std::byte>> bunzip2(std::span<const std::byte> in, std::size_t limit, std::size_t* used_in) {
  bz_stream s{};
  if (BZ2_bzDecompressInit(&s, 0, 0) != BZ_OK) return plain_error("libbz2: cannot start decoding");
  Output out{.bytes = {}, .used = 0, .limit = limit};
  s.next_in = reinterpret_cast<char*>(const_cast<std::byte*>(in.data()));
  s.avail_in = static_cast<unsigned>(std::min<std::size_t>(in.size(), UINT32_MAX));
  int r = BZ_OK;
  while (r != BZ_STREAM_END) {
    if (!out.reserve()) {
      BZ2_bzDecompressEnd(&s);
      return std::unexpected(too_big("bzip2", limit));
    }
    s.next_out = reinterpret_cast<char*>(out.tail());
    s.avail_out = static_cast<unsigned>(std::min<std::size_t>(out.room(), UINT32_MAX));
    const unsigned before = s.avail_out;
    r = BZ2_bzDecompress(&s);
    out.used += before - s.avail_out;
    if (r != BZ_OK && r != BZ_STREAM_END) {
      BZ2_bzDecompressEnd(&s);
      return plain_error("bzip2: the payload is damaged (libbz2 error {})", r);
    }
    if (r == BZ_OK && s.avail_in == 0 && s.avail_out != 0) {
      BZ2_bzDecompressEnd(&s);
      return plain_error("bzip2: the payload ends in the middle of the stream");
    }
  }
  if (used_in != nullptr) *used_in = (std::size_t{s.total_in_hi32} << 32) | s.total_in_lo32;
  BZ2_bzDecompressEnd(&s);
  return out.take();
}

// The methods whose stream ends in the data (all but the kernel's legacy LZ4 frames), undone;
// nullopt for any other method.
std::optional<Result<std::vector<std::byte>>> undo_stream(Compression method, std::span<const std::byte> in,
                                                          std::size_t limit, std::size_t* used_in) {
  switch (method) {
    case Compression::kGzip: return gunzip(in, limit, used_in);
    case Compression::kXz: return unxz(in, limit, false, used_in);
    case Compression::kLzma: return unxz(in, limit, true, used_in);
    case Compression::kZstd: return unzstd(in, limit, used_in);
    case Compression::kBzip2: return bunzip2(in, limit, used_in);
    default: return std::nullopt;
  }
}

}  // namespace

std::string_view compression_name(Compression c) {
  switch (c) {
    case Compression::kGzip: return "gzip";
    case Compression::kXz: return "xz";
    case Compression::kLzma: return "lzma";
    case Compression::kLz4: return "lz4";
    case Compression::kZstd: return "zstd";
    case Compression::kBzip2: return "bzip2";
    case Compression::kLzo: return "lzo";
    case Compression::kNone: return "none (an ELF)";
    case Compression::kUnknown: break;
  }
  return "unknown";
}

Compression detect_compression(std::span<const std::byte> p) {
  if (starts(p, {0x1f, 0x8b})) return Compression::kGzip;
  if (starts(p, {0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00})) return Compression::kXz;
  if (starts(p, {0x5d, 0x00, 0x00})) return Compression::kLzma;
  if (starts(p, {0x02, 0x21, 0x4c, 0x18})) return Compression::kLz4;
  if (starts(p, {0x28, 0xb5, 0x2f, 0xfd})) return Compression::kZstd;
  if (starts(p, {0x42, 0x5a, 0x68})) return Compression::kBzip2;
  if (starts(p, {0x89, 0x4c, 0x5a, 0x4f})) return Compression::kLzo;
  if (starts(p, {0x7f, 0x45, 0x4c, 0x46})) return Compression::kNone;
  return Compression::kUnknown;
}

Result<std::span<const std::byte>> bzimage_payload(std::span<const std::byte> bzimage) {
  if (bzimage.size() < 0x1f1 + sizeof(SetupHeader)) return plain_error("truncated bzImage: no whole setup header");
  SetupHeader hdr;
  std::memcpy(&hdr, bzimage.data() + 0x1f1, sizeof(hdr));
  if (hdr.version < 0x208) return plain_error("boot protocol {:#x} has no payload fields (2.08 added them)", std::uint16_t{hdr.version});
  const std::uint64_t setup = (std::uint64_t{hdr.setup_sects == 0 ? 4u : hdr.setup_sects} + 1) * 512;
  const std::uint64_t off = setup + hdr.payload_offset, len = hdr.payload_length;
  if (len == 0 || off > bzimage.size() || len > bzimage.size() - off)
    return plain_error("the header's payload ({} bytes at {:#x}) is not inside the {}-byte file", len, off, bzimage.size());
  return bzimage.subspan(off, len);
}

Result<UnpackedKernel> unpack_bzimage(std::span<const std::byte> bzimage) {
  KILN_ASSIGN(const auto payload, bzimage_payload(bzimage));
  UnpackedKernel k;
  k.method = detect_compression(payload);
  const auto t0 = std::chrono::steady_clock::now();
  KILN_ASSIGN(k.vmlinux, decompress(payload, std::size_t{1} << 30));
  k.milliseconds = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (k.method != Compression::kNone) {
    if (payload.size() < 4) return plain_error("the payload is too short for its unpacked-size trailer");
    if (const std::uint32_t appended = le32(payload, payload.size() - 4); appended != k.vmlinux.size())
      return plain_error("the payload unpacked to {} bytes where its trailer says {}: damaged", k.vmlinux.size(),
                         appended);
  }
  if (detect_compression(k.vmlinux) != Compression::kNone)
    return plain_error("the payload did not unpack to an ELF vmlinux");
  return k;
}

std::string UnpackedKernel::describe() const {
  return fmt::format("{:.1f} MiB of {} in {:.0f} ms", static_cast<double>(vmlinux.size()) / (1 << 20),
                     compression_name(method), milliseconds);
}

Result<std::vector<std::byte>> decompress(std::span<const std::byte> payload, std::size_t limit) {
  const Compression method = detect_compression(payload);
  if (auto out = undo_stream(method, payload, limit, nullptr)) return std::move(*out);
  switch (method) {
    case Compression::kLz4: return unlz4(payload, limit);
    case Compression::kNone: return std::vector<std::byte>(payload.begin(), payload.end());
    case Compression::kLzo: return plain_error("an LZO-compressed kernel: kiln has no LZO library to unpack it");
    default: break;
  }
  return plain_error("the payload's compression is not one kiln knows (it starts {:02x} {:02x} {:02x} {:02x})",
                     payload.size() > 0 ? std::to_integer<unsigned>(payload[0]) : 0u,
                     payload.size() > 1 ? std::to_integer<unsigned>(payload[1]) : 0u,
                     payload.size() > 2 ? std::to_integer<unsigned>(payload[2]) : 0u,
                     payload.size() > 3 ? std::to_integer<unsigned>(payload[3]) : 0u);
}

namespace {

// The length of the newc cpio archive (or archives) at the start of `d`, through its TRAILER!!!
// entry and the zero bytes after it: the kernel reads such archives as they are and looks at what
// follows for another archive or a compressed one. nullopt where the headers do not make sense.
std::optional<std::size_t> plain_cpio_length(std::span<const std::byte> d) {
  constexpr std::size_t kHeader = 110;
  auto field = [&](std::size_t at, int index) -> std::optional<std::uint32_t> {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < 8; ++i) {
      const auto c = std::to_integer<char>(d[at + 6 + 8 * static_cast<std::size_t>(index) + i]);
      const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                                     : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (digit < 0) return std::nullopt;
      v = v << 4 | static_cast<std::uint32_t>(digit);
    }
    return v;
  };
  auto align4 = [](std::size_t v) { return (v + 3) & ~std::size_t{3}; };
  std::size_t at = 0;
  for (;;) {
    if (d.size() - at < kHeader || (!starts(d.subspan(at), {'0', '7', '0', '7', '0', '1'}) &&
                                    !starts(d.subspan(at), {'0', '7', '0', '7', '0', '2'})))
      return std::nullopt;
    std::array<std::uint32_t, 13> fields{};  // every one 8 hex digits
    for (int i = 0; i < 13; ++i) {
      const auto v = field(at, i);
      if (!v) return std::nullopt;
      fields[static_cast<std::size_t>(i)] = *v;
    }
    const std::uint32_t filesize = fields[6], namesize = fields[11];
    if (namesize == 0) return std::nullopt;
    const std::size_t name_end = at + kHeader + namesize;
    if (name_end > d.size()) return std::nullopt;
    const std::size_t data = align4(name_end);
    if (filesize > d.size() || data > d.size() - filesize) return std::nullopt;
    const std::string_view name(reinterpret_cast<const char*>(d.data() + at + kHeader), namesize - 1);
    at = std::min(d.size(), align4(data + filesize));
    if (name != "TRAILER!!!") continue;
    while (at < d.size() && d[at] == std::byte{0}) ++at;
    if (at == d.size() || std::to_integer<char>(d[at]) != '0') return at;  // the end, or a compressed part
  }
}

}  // namespace

Result<std::optional<UnpackedInitrd>> unpack_initrd(std::span<const std::byte> initrd, std::size_t limit) {
  const auto t0 = std::chrono::steady_clock::now();
  UnpackedInitrd u;
  bool compressed = false;
  std::size_t at = 0;
  while (at < initrd.size()) {
    const auto rest = initrd.subspan(at);
    if (rest[0] == std::byte{0}) {  // padding between parts
      ++at;
      continue;
    }
    // The kernel reads a cpio header only at an offset that is a multiple of 4; what came before
    // (a compressed part's output) need not end at one.
    u.bytes.resize((u.bytes.size() + 3) & ~std::size_t{3}, std::byte{0});
    if (std::to_integer<char>(rest[0]) == '0') {
      const auto n = plain_cpio_length(rest);
      if (!n) return plain_error("a cpio archive at byte {} has a header kiln cannot read", at);
      if (u.bytes.size() + *n > limit) return plain_error("the initrd unpacks to more than {} MiB", limit >> 20);
      u.bytes.insert(u.bytes.end(), rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(*n));
      at += *n;
      continue;
    }
    const Compression method = detect_compression(rest);
    std::size_t used = 0;
    auto stream = undo_stream(method, rest, limit - std::min(limit, u.bytes.size()), &used);
    if (!stream)
      return plain_error("the part at byte {} is {}: kiln leaves that to the guest's kernel", at,
                         method == Compression::kUnknown ? "neither cpio nor compressed data kiln knows"
                                                         : fmt::format("{}-compressed", compression_name(method)));
    auto& part = *stream;
    if (!part) return std::unexpected(with_context(part.error(), fmt::format("the part at byte {}", at)));
    if (used == 0) return plain_error("the {} part at byte {} took no input", compression_name(method), at);
    if (u.bytes.size() + part->size() > limit) return plain_error("the initrd unpacks to more than {} MiB", limit >> 20);
    u.bytes.insert(u.bytes.end(), part->begin(), part->end());
    u.method = method;
    compressed = true;
    at += used;
  }
  if (!compressed) return std::nullopt;
  u.compressed_size = initrd.size();
  u.milliseconds = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return std::optional<UnpackedInitrd>(std::move(u));
}

std::string UnpackedInitrd::describe() const {
  return fmt::format("{:.1f} MiB of {} became {:.1f} MiB in {:.0f} ms", static_cast<double>(compressed_size) / (1 << 20),
                     compression_name(method), static_cast<double>(bytes.size()) / (1 << 20), milliseconds);
}

}  // namespace kiln::boot
