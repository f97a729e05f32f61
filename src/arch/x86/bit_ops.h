#pragma once
// The BMI1/BMI2 (and LZCNT) general-purpose bit instructions, as pure functions of their inputs:
// what the emulation fallback carries out when the host's emulator gives up on one (Debian's
// zstd-compressed kernels run `shlx`, `bzhi` ... in their decompressor, chosen by CPUID). Each
// gives the architectural result and the flags the SDM defines; flags it calls undefined are
// cleared (a guest cannot count on them).
#include <cstdint>
#include <optional>
#include <string_view>

namespace kiln::x86 {

enum class BitOp {
  kAndn,    // ~a & b                      (a: vvvv, b: r/m)
  kBextr,   // bits of a picked by b       (a: r/m, b: vvvv; start b[7:0], length b[15:8])
  kBlsi,    // a & -a                      (a: r/m)
  kBlsmsk,  // a ^ (a - 1)
  kBlsr,    // a & (a - 1)
  kBzhi,    // a with bits from b[7:0] up cleared (a: r/m, b: vvvv)
  kMulx,    // a * b unsigned, no flags    (a: RDX/EDX, b: r/m): value = low half, high = high half
  kPdep,    // a's low bits deposited at b's set bits (a: vvvv, b: r/m)
  kPext,    // a's bits at b's set bits, packed low
  kRorx,    // a rotated right by b, no flags (b: the immediate)
  kSarx,    // a >> b arithmetic, no flags (b: vvvv, masked to the width)
  kShlx,    // a << b
  kShrx,    // a >> b logical
  kTzcnt,   // trailing zero bits of a (the width when a is 0)
  kLzcnt,   // leading zero bits of a
};

struct BitOpResult {
  std::uint64_t value = 0;   // the destination (zero-extended to 64 bits for a 32-bit op)
  std::uint64_t high = 0;    // kMulx: the high half
  std::uint64_t rflags = 0;  // rflags after the instruction
};

// `width` is the operand size in bits: 32 or 64 (16 too for kTzcnt and kLzcnt). Inputs are taken
// modulo the width.
BitOpResult bit_op(BitOp op, unsigned width, std::uint64_t a, std::uint64_t b, std::uint64_t rflags);

// The flags bit_op() sets as the SDM defines them (for tests: the others are undefined).
std::uint64_t defined_flags(BitOp op);

// The instruction's name ("andn" ...), and the op for a name.
std::string_view bit_op_name(BitOp op);
std::optional<BitOp> bit_op_from_name(std::string_view name);

}  // namespace kiln::x86
