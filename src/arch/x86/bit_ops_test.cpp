#include "arch/x86/bit_ops.h"

#include <cpuid.h>

#include <gtest/gtest.h>

#include <random>

#include "arch/x86/cpu_state.h"

namespace kiln::x86 {
namespace {

constexpr std::uint64_t kArith = kRflagsCf | kRflagsPf | kRflagsAf | kRflagsZf | kRflagsSf | kRflagsOf;

bool host_has_bmi() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool bmi1 = (b >> 3) & 1, bmi2 = (b >> 8) & 1;
  if (!__get_cpuid(0x80000001, &a, &b, &c, &d)) return false;
  const bool lzcnt = (c >> 5) & 1;
  return bmi1 && bmi2 && lzcnt;
}

// The host CPU's own answer: the instruction run on (a, b) with `flags_in` in RFLAGS' arithmetic
// flags. AT&T operand order: sources first, the destination last.
struct Host {
  std::uint64_t value = 0, high = 0, rflags = 0;
};

#define KILN_RUN2(insn, dst, src)                                                                       \
  __asm__ volatile("push %[f]\n\tpopfq\n\t" insn "\n\tpushfq\n\tpop %[f]"                               \
                   : [d] "=&r"(dst), [f] "+r"(flags)                                                    \
                   : [a] "r"(src)                                                                       \
                   : "cc")
#define KILN_RUN3(insn, dst, s1, s2)                                                                    \
  __asm__ volatile("push %[f]\n\tpopfq\n\t" insn "\n\tpushfq\n\tpop %[f]"                               \
                   : [d] "=&r"(dst), [f] "+r"(flags)                                                    \
                   : [a] "r"(s1), [b] "r"(s2)                                                           \
                   : "cc")

template <unsigned Imm>
void rorx(unsigned width, std::uint64_t a, Host& h) {
  if (width == 64) {
    __asm__("rorx %[i], %[a], %[d]" : [d] "=r"(h.value) : [a] "r"(a), [i] "i"(Imm));
  } else {
    std::uint32_t d = 0;
    __asm__("rorx %[i], %[a], %[d]" : [d] "=r"(d) : [a] "r"(static_cast<std::uint32_t>(a)), [i] "i"(Imm));
    h.value = d;
  }
}

Host host(BitOp op, unsigned width, std::uint64_t a, std::uint64_t b, std::uint64_t flags_in) {
  Host h;
  std::uint64_t flags = flags_in;
  if (width == 64) {
    std::uint64_t d = 0;
    switch (op) {
      case BitOp::kAndn: KILN_RUN3("andn %[b], %[a], %[d]", d, a, b); break;
      case BitOp::kBextr: KILN_RUN3("bextr %[b], %[a], %[d]", d, a, b); break;
      case BitOp::kBlsi: KILN_RUN2("blsi %[a], %[d]", d, a); break;
      case BitOp::kBlsmsk: KILN_RUN2("blsmsk %[a], %[d]", d, a); break;
      case BitOp::kBlsr: KILN_RUN2("blsr %[a], %[d]", d, a); break;
      case BitOp::kBzhi: KILN_RUN3("bzhi %[b], %[a], %[d]", d, a, b); break;
      case BitOp::kPdep: KILN_RUN3("pdep %[b], %[a], %[d]", d, a, b); break;
      case BitOp::kPext: KILN_RUN3("pext %[b], %[a], %[d]", d, a, b); break;
      case BitOp::kSarx: KILN_RUN3("sarx %[b], %[a], %[d]", d, a, b); break;
      case BitOp::kShlx: KILN_RUN3("shlx %[b], %[a], %[d]", d, a, b); break;
      case BitOp::kShrx: KILN_RUN3("shrx %[b], %[a], %[d]", d, a, b); break;
      case BitOp::kTzcnt: KILN_RUN2("tzcnt %[a], %[d]", d, a); break;
      case BitOp::kLzcnt: KILN_RUN2("lzcnt %[a], %[d]", d, a); break;
      case BitOp::kMulx: {
        std::uint64_t hi = 0;
        __asm__ volatile("push %[f]\n\tpopfq\n\tmulx %[b], %[lo], %[hi]\n\tpushfq\n\tpop %[f]"
                         : [lo] "=&r"(d), [hi] "=&r"(hi), [f] "+r"(flags)
                         : "d"(a), [b] "r"(b)
                         : "cc");
        h.high = hi;
        break;
      }
      case BitOp::kRorx: break;
    }
    h.value = d;
  } else if (width == 32) {
    std::uint32_t d = 0;
    const auto a32 = static_cast<std::uint32_t>(a), b32 = static_cast<std::uint32_t>(b);
    switch (op) {
      case BitOp::kAndn: KILN_RUN3("andn %[b], %[a], %[d]", d, a32, b32); break;
      case BitOp::kBextr: KILN_RUN3("bextr %[b], %[a], %[d]", d, a32, b32); break;
      case BitOp::kBlsi: KILN_RUN2("blsi %[a], %[d]", d, a32); break;
      case BitOp::kBlsmsk: KILN_RUN2("blsmsk %[a], %[d]", d, a32); break;
      case BitOp::kBlsr: KILN_RUN2("blsr %[a], %[d]", d, a32); break;
      case BitOp::kBzhi: KILN_RUN3("bzhi %[b], %[a], %[d]", d, a32, b32); break;
      case BitOp::kPdep: KILN_RUN3("pdep %[b], %[a], %[d]", d, a32, b32); break;
      case BitOp::kPext: KILN_RUN3("pext %[b], %[a], %[d]", d, a32, b32); break;
      case BitOp::kSarx: KILN_RUN3("sarx %[b], %[a], %[d]", d, a32, b32); break;
      case BitOp::kShlx: KILN_RUN3("shlx %[b], %[a], %[d]", d, a32, b32); break;
      case BitOp::kShrx: KILN_RUN3("shrx %[b], %[a], %[d]", d, a32, b32); break;
      case BitOp::kTzcnt: KILN_RUN2("tzcnt %[a], %[d]", d, a32); break;
      case BitOp::kLzcnt: KILN_RUN2("lzcnt %[a], %[d]", d, a32); break;
      case BitOp::kMulx: {
        std::uint32_t hi = 0;
        __asm__ volatile("push %[f]\n\tpopfq\n\tmulx %[b], %[lo], %[hi]\n\tpushfq\n\tpop %[f]"
                         : [lo] "=&r"(d), [hi] "=&r"(hi), [f] "+r"(flags)
                         : "d"(a32), [b] "r"(b32)
                         : "cc");
        h.high = hi;
        break;
      }
      case BitOp::kRorx: break;
    }
    h.value = d;
  } else {  // 16-bit tzcnt / lzcnt
    std::uint16_t d = 0;
    const auto a16 = static_cast<std::uint16_t>(a);
    if (op == BitOp::kTzcnt) KILN_RUN2("tzcnt %[a], %[d]", d, a16);
    else KILN_RUN2("lzcnt %[a], %[d]", d, a16);
    h.value = d;
  }
  h.rflags = flags;
  return h;
}

class BitOpsVsHost : public ::testing::TestWithParam<BitOp> {
 protected:
  void SetUp() override {
    if (!host_has_bmi()) GTEST_SKIP() << "this CPU has no BMI1/BMI2/LZCNT to compare with";
  }
};

// Operands that find the edges: 0, all ones, single bits, the sign bit, small counts, and
// random ones.
std::uint64_t operand(std::mt19937_64& rng) {
  switch (rng() % 8) {
    case 0: return 0;
    case 1: return ~0ull;
    case 2: return 1ull << (rng() % 64);
    case 3: return rng() % 80;                               // counts and indices, some past the width
    case 4: return (rng() % 70) | ((rng() % 70) << 8);       // bextr controls
    case 5: return rng() & rng();                            // sparse
    default: return rng();
  }
}

TEST_P(BitOpsVsHost, TheSameResultAndDefinedFlagsAsThisCpuOnRandomOperands) {
  const BitOp op = GetParam();
  std::mt19937_64 rng(0x6b696c6eu + static_cast<unsigned>(op));
  const bool counts = op == BitOp::kTzcnt || op == BitOp::kLzcnt;
  for (unsigned width : {16u, 32u, 64u}) {
    if (width == 16 && !counts) continue;
    for (int i = 0; i < 20000; ++i) {
      const std::uint64_t a = operand(rng), b = operand(rng);
      // Random arithmetic flags in, so that "unchanged" and "cleared" are told apart.
      const std::uint64_t flags_in = kRflagsReserved1 | (rng() & kArith);
      const Host h = host(op, width, a, b, flags_in);
      const BitOpResult k = bit_op(op, width, a, b, flags_in);
      const std::uint64_t defined = defined_flags(op);
      ASSERT_EQ(k.value, h.value) << bit_op_name(op) << width << " a=" << std::hex << a << " b=" << b;
      if (op == BitOp::kMulx) {
        ASSERT_EQ(k.high, h.high) << "mulx" << width << " a=" << std::hex << a << " b=" << b;
      }
      ASSERT_EQ(k.rflags & defined, h.rflags & defined)
          << bit_op_name(op) << width << " a=" << std::hex << a << " b=" << b << " flags in " << flags_in;
      ASSERT_EQ(k.rflags & ~kArith, flags_in & ~kArith) << "no flag outside the arithmetic ones moves";
    }
  }
}

TEST(BitOpsVsHostRorx, TheSameRotationAsThisCpu) {
  if (!host_has_bmi()) GTEST_SKIP() << "this CPU has no BMI2 to compare with";
  std::mt19937_64 rng(7);
  for (int i = 0; i < 5000; ++i) {
    const std::uint64_t a = rng();
    for (unsigned width : {32u, 64u}) {
      Host h;
      const auto check = [&](unsigned imm) {
        EXPECT_EQ(bit_op(BitOp::kRorx, width, a, imm, kRflagsReserved1).value, h.value)
            << "rorx" << width << " by " << imm << " of " << std::hex << a;
      };
      rorx<0>(width, a, h), check(0);
      rorx<1>(width, a, h), check(1);
      rorx<13>(width, a, h), check(13);
      rorx<31>(width, a, h), check(31);
      rorx<32>(width, a, h), check(32);
      rorx<63>(width, a, h), check(63);
      rorx<200>(width, a, h), check(200);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Bmi, BitOpsVsHost,
                         ::testing::Values(BitOp::kAndn, BitOp::kBextr, BitOp::kBlsi, BitOp::kBlsmsk, BitOp::kBlsr,
                                           BitOp::kBzhi, BitOp::kMulx, BitOp::kPdep, BitOp::kPext, BitOp::kSarx,
                                           BitOp::kShlx, BitOp::kShrx, BitOp::kTzcnt, BitOp::kLzcnt),
                         [](const auto& p) { return std::string(bit_op_name(p.param)); });

TEST(BitOps, NamesRoundTrip) {
  for (auto op : {BitOp::kAndn, BitOp::kRorx, BitOp::kLzcnt}) EXPECT_EQ(bit_op_from_name(bit_op_name(op)), op);
  EXPECT_FALSE(bit_op_from_name("popcnt"));
}

}  // namespace
}  // namespace kiln::x86
