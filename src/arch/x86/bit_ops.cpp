#include "arch/x86/bit_ops.h"

#include <array>
#include <bit>

#include "arch/x86/cpu_state.h"

namespace kiln::x86 {

namespace {

constexpr std::uint64_t kArith = kRflagsCf | kRflagsPf | kRflagsAf | kRflagsZf | kRflagsSf | kRflagsOf;

__extension__ typedef unsigned __int128 Uint128;

std::uint64_t mask_of(unsigned width) { return width >= 64 ? ~0ull : (1ull << width) - 1; }

struct Named {
  BitOp op;
  std::string_view name;
};
constexpr std::array<Named, 15> kNames{{{BitOp::kAndn, "andn"},
                                        {BitOp::kBextr, "bextr"},
                                        {BitOp::kBlsi, "blsi"},
                                        {BitOp::kBlsmsk, "blsmsk"},
                                        {BitOp::kBlsr, "blsr"},
                                        {BitOp::kBzhi, "bzhi"},
                                        {BitOp::kMulx, "mulx"},
                                        {BitOp::kPdep, "pdep"},
                                        {BitOp::kPext, "pext"},
                                        {BitOp::kRorx, "rorx"},
                                        {BitOp::kSarx, "sarx"},
                                        {BitOp::kShlx, "shlx"},
                                        {BitOp::kShrx, "shrx"},
                                        {BitOp::kTzcnt, "tzcnt"},
                                        {BitOp::kLzcnt, "lzcnt"}}};

}  // namespace

std::uint64_t defined_flags(BitOp op) {
  switch (op) {
    case BitOp::kAndn:
    case BitOp::kBlsi:
    case BitOp::kBlsmsk:
    case BitOp::kBlsr:
    case BitOp::kBzhi: return kRflagsZf | kRflagsSf | kRflagsCf | kRflagsOf;
    case BitOp::kBextr: return kRflagsZf | kRflagsCf | kRflagsOf;
    case BitOp::kTzcnt:
    case BitOp::kLzcnt: return kRflagsZf | kRflagsCf;
    default: return kArith;  // the rest leave every flag as it was
  }
}

BitOpResult bit_op(BitOp op, unsigned width, std::uint64_t a, std::uint64_t b, std::uint64_t rflags) {
  const std::uint64_t m = mask_of(width);
  const std::uint64_t sign = 1ull << (width - 1);
  a &= m;
  BitOpResult r;
  r.rflags = rflags;
  // The flag-setting ones: ZF and SF from the result, CF as given, OF cleared, the rest undefined
  // (cleared here).
  auto logic = [&](std::uint64_t v, bool cf) {
    r.value = v & m;
    r.rflags &= ~kArith;
    if (r.value == 0) r.rflags |= kRflagsZf;
    if ((r.value & sign) != 0) r.rflags |= kRflagsSf;
    if (cf) r.rflags |= kRflagsCf;
  };
  switch (op) {
    case BitOp::kAndn: logic(~a & b, false); break;
    case BitOp::kBextr: {
      const unsigned start = b & 0xff, len = (b >> 8) & 0xff;
      std::uint64_t v = start >= width ? 0 : a >> start;
      if (len < width) v &= mask_of(len);
      logic(v, false);
      r.rflags &= ~kRflagsSf;  // undefined for bextr
      break;
    }
    case BitOp::kBlsi: logic(a & (0 - a), a != 0); break;
    case BitOp::kBlsmsk:
      logic(a ^ (a - 1), a == 0);
      r.rflags &= ~kRflagsZf;  // always cleared: the result has at least its lowest bit set
      break;
    case BitOp::kBlsr: logic(a & (a - 1), a == 0); break;
    case BitOp::kBzhi: {
      const unsigned n = b & 0xff;
      logic(n < width ? a & mask_of(n) : a, n > width - 1);
      break;
    }
    case BitOp::kMulx: {
      b &= m;
      if (width == 64) {
        const Uint128 p = static_cast<Uint128>(a) * b;
        r.value = static_cast<std::uint64_t>(p);
        r.high = static_cast<std::uint64_t>(p >> 64);
      } else {
        const std::uint64_t p = a * b;
        r.value = p & m;
        r.high = p >> 32;
      }
      break;
    }
    case BitOp::kPdep: {
      std::uint64_t v = 0, mask = b & m;
      for (std::uint64_t bit = 1; mask != 0; bit <<= 1) {
        const std::uint64_t low = mask & (0 - mask);
        if ((a & bit) != 0) v |= low;
        mask &= mask - 1;
      }
      r.value = v;
      break;
    }
    case BitOp::kPext: {
      std::uint64_t v = 0, mask = b & m;
      for (std::uint64_t bit = 1; mask != 0; bit <<= 1) {
        const std::uint64_t low = mask & (0 - mask);
        if ((a & low) != 0) v |= bit;
        mask &= mask - 1;
      }
      r.value = v;
      break;
    }
    case BitOp::kRorx: {
      const unsigned n = static_cast<unsigned>(b) & (width - 1);
      r.value = n == 0 ? a : ((a >> n) | (a << (width - n))) & m;
      break;
    }
    case BitOp::kSarx:
    case BitOp::kShlx:
    case BitOp::kShrx: {
      const unsigned n = static_cast<unsigned>(b) & (width - 1);
      if (op == BitOp::kShlx) {
        r.value = (a << n) & m;
      } else if (op == BitOp::kShrx) {
        r.value = a >> n;
      } else {
        const std::int64_t wide = (a & sign) != 0 ? static_cast<std::int64_t>(a | ~m) : static_cast<std::int64_t>(a);
        r.value = static_cast<std::uint64_t>(wide >> n) & m;
      }
      break;
    }
    case BitOp::kTzcnt:
    case BitOp::kLzcnt: {
      unsigned n = width;
      if (a != 0)
        n = op == BitOp::kTzcnt ? static_cast<unsigned>(std::countr_zero(a))
                                : static_cast<unsigned>(std::countl_zero(a)) - (64 - width);
      r.value = n;
      r.rflags &= ~kArith;
      if (n == 0) r.rflags |= kRflagsZf;
      if (a == 0) r.rflags |= kRflagsCf;
      break;
    }
  }
  return r;
}

std::string_view bit_op_name(BitOp op) {
  for (const auto& n : kNames)
    if (n.op == op) return n.name;
  return "?";
}

std::optional<BitOp> bit_op_from_name(std::string_view name) {
  for (const auto& n : kNames)
    if (n.name == name) return n.op;
  return std::nullopt;
}

}  // namespace kiln::x86
