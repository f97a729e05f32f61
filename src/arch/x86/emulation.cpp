#include "arch/x86/emulation.h"

#include <bit>
#include <optional>

#include <Zydis/Zydis.h>
#include <fmt/format.h>

#include "arch/x86/page_walk.h"

namespace kiln::x86 {

namespace {

using Kind = EmulationOutcome::Kind;

struct Mode {
  ZydisMachineMode machine;
  ZydisStackWidth stack;
  bool long64;
};

Mode cpu_mode(const SpecialRegisters& s) {
  if ((s.efer & kEferLma) != 0 && s.cs.l != 0) return {ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64, true};
  if ((s.cr0 & kCr0Pe) == 0) return {ZYDIS_MACHINE_MODE_REAL_16, ZYDIS_STACK_WIDTH_16, false};
  if (s.cs.db != 0)
    return {(s.efer & kEferLma) != 0 ? ZYDIS_MACHINE_MODE_LONG_COMPAT_32 : ZYDIS_MACHINE_MODE_LEGACY_32,
            ZYDIS_STACK_WIDTH_32, false};
  return {(s.efer & kEferLma) != 0 ? ZYDIS_MACHINE_MODE_LONG_COMPAT_16 : ZYDIS_MACHINE_MODE_LEGACY_16,
          ZYDIS_STACK_WIDTH_16, false};
}

std::uint64_t* gpr(Registers& r, ZydisRegister reg64) {
  switch (reg64) {
    case ZYDIS_REGISTER_RAX: return &r.rax;
    case ZYDIS_REGISTER_RBX: return &r.rbx;
    case ZYDIS_REGISTER_RCX: return &r.rcx;
    case ZYDIS_REGISTER_RDX: return &r.rdx;
    case ZYDIS_REGISTER_RSI: return &r.rsi;
    case ZYDIS_REGISTER_RDI: return &r.rdi;
    case ZYDIS_REGISTER_RSP: return &r.rsp;
    case ZYDIS_REGISTER_RBP: return &r.rbp;
    case ZYDIS_REGISTER_R8: return &r.r8;
    case ZYDIS_REGISTER_R9: return &r.r9;
    case ZYDIS_REGISTER_R10: return &r.r10;
    case ZYDIS_REGISTER_R11: return &r.r11;
    case ZYDIS_REGISTER_R12: return &r.r12;
    case ZYDIS_REGISTER_R13: return &r.r13;
    case ZYDIS_REGISTER_R14: return &r.r14;
    case ZYDIS_REGISTER_R15: return &r.r15;
    default: return nullptr;
  }
}

std::uint64_t width_mask(unsigned bits) { return bits >= 64 ? ~0ull : ((1ull << bits) - 1); }

// A general-purpose register operand (16/32/64-bit, no high-byte registers).
struct GprRef {
  std::uint64_t* slot = nullptr;
  unsigned bits = 0;
};

GprRef resolve_gpr(Registers& r, ZydisRegister reg) {
  const ZydisRegister full = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, reg);
  return {gpr(r, full), ZydisRegisterGetWidth(ZYDIS_MACHINE_MODE_LONG_64, reg)};
}

void write_gpr(GprRef g, std::uint64_t value) {
  if (g.bits == 32) *g.slot = value & 0xffff'ffffull;  // 32-bit writes zero-extend
  else if (g.bits == 64) *g.slot = value;
  else *g.slot = (*g.slot & ~width_mask(g.bits)) | (value & width_mask(g.bits));
}

std::uint64_t segment_base(const SpecialRegisters& s, ZydisRegister seg, bool long64) {
  switch (seg) {
    case ZYDIS_REGISTER_FS: return s.fs.base;
    case ZYDIS_REGISTER_GS: return s.gs.base;
    case ZYDIS_REGISTER_ES: return long64 ? 0 : s.es.base;
    case ZYDIS_REGISTER_CS: return long64 ? 0 : s.cs.base;
    case ZYDIS_REGISTER_SS: return long64 ? 0 : s.ss.base;
    default: return long64 ? 0 : s.ds.base;
  }
}

// Linear address of a memory operand.
std::optional<std::uint64_t> effective_address(const ZydisDecodedInstruction& in, const ZydisDecodedOperand& op,
                                               Registers& r, const SpecialRegisters& s, bool long64) {
  std::uint64_t ea = static_cast<std::uint64_t>(op.mem.disp.value);
  if (op.mem.base == ZYDIS_REGISTER_RIP || op.mem.base == ZYDIS_REGISTER_EIP) {
    ea += r.rip + in.length;
  } else if (op.mem.base != ZYDIS_REGISTER_NONE) {
    GprRef b = resolve_gpr(r, op.mem.base);
    if (b.slot == nullptr) return std::nullopt;
    ea += *b.slot & width_mask(b.bits);
  }
  if (op.mem.index != ZYDIS_REGISTER_NONE) {
    GprRef i = resolve_gpr(r, op.mem.index);
    if (i.slot == nullptr) return std::nullopt;
    ea += (*i.slot & width_mask(i.bits)) * op.mem.scale;
  }
  ea &= width_mask(in.address_width);
  return ea + segment_base(s, op.mem.segment, long64);
}

EmulationOutcome advance(Registers& r, const ZydisDecodedInstruction& in, std::string name) {
  r.rip += in.length;
  return {Kind::kEmulated, 0, false, std::move(name), {}};
}

EmulationOutcome fault(std::string name, std::string why) { return {Kind::kFault, 0, false, std::move(name), std::move(why)}; }

}  // namespace

std::string hex_bytes(std::span<const std::byte> bytes) {
  std::string s;
  for (std::size_t i = 0; i < bytes.size(); ++i) s += fmt::format("{}{:02x}", i == 0 ? "" : " ", static_cast<unsigned>(bytes[i]));
  return s;
}

std::size_t fetch_instruction(const GuestMemory& mem, const SpecialRegisters& sregs, const Registers& regs,
                              std::array<std::byte, 15>& out) {
  const bool long64 = (sregs.efer & kEferLma) != 0 && sregs.cs.l != 0;
  const std::uint64_t linear = long64 ? regs.rip : sregs.cs.base + (regs.rip & 0xffff'ffffull);
  return read_linear(mem, sregs, linear, out);
}

EmulationOutcome emulate_instruction(std::span<const std::byte> bytes, Registers& r, const SpecialRegisters& s,
                                     FpuState& fpu, const GuestMemory& mem) {
  const Mode mode = cpu_mode(s);
  ZydisDecoder decoder;
  ZydisDecoderInit(&decoder, mode.machine, mode.stack);
  ZydisDecodedInstruction in;
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
  if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&decoder, bytes.data(), bytes.size(), &in, ops)))
    return {Kind::kUnknown, 0, false, "undecodable", "the bytes do not decode as an instruction"};

  ZydisFormatter formatter;
  ZydisFormatterInit(&formatter, ZYDIS_FORMATTER_STYLE_INTEL);
  char text[96] = {};
  ZydisFormatterFormatInstruction(&formatter, &in, ops, in.operand_count_visible, text, sizeof(text), r.rip, nullptr);

  switch (in.mnemonic) {
    case ZYDIS_MNEMONIC_INT3:
      // A trap: the handler sees RIP after the int3.
      r.rip += in.length;
      return {Kind::kInjectException, kVectorBreakpoint, false, "int3", text};
    case ZYDIS_MNEMONIC_CLAC:
      r.rflags &= ~kRflagsAc;
      return advance(r, in, "clac");
    case ZYDIS_MNEMONIC_STAC:
      r.rflags |= kRflagsAc;
      return advance(r, in, "stac");
    case ZYDIS_MNEMONIC_FWAIT:
      return advance(r, in, "fwait");
    case ZYDIS_MNEMONIC_NOP:
    case ZYDIS_MNEMONIC_PAUSE:
      return advance(r, in, "nop");
    case ZYDIS_MNEMONIC_LFENCE:
    case ZYDIS_MNEMONIC_MFENCE:
    case ZYDIS_MNEMONIC_SFENCE:
      // kiln's own access is already ordered: the vCPU is out of guest mode.
      return advance(r, in, "fence");
    case ZYDIS_MNEMONIC_LDMXCSR:
    case ZYDIS_MNEMONIC_STMXCSR: {
      const bool load = in.mnemonic == ZYDIS_MNEMONIC_LDMXCSR;
      const char* name = load ? "ldmxcsr" : "stmxcsr";
      auto ea = effective_address(in, ops[0], r, s, mode.long64);
      if (!ea) return fault(name, text);
      std::uint32_t v = 0;
      if (load) {
        if (read_linear(mem, s, *ea, std::as_writable_bytes(std::span(&v, 1))) != 4) return fault(name, text);
        if ((v & 0xffff'0000u) != 0) {  // reserved bits: #GP(0)
          return {Kind::kInjectException, kVectorGeneralProtection, false, name, text};
        }
        fpu.mxcsr = v;
      } else {
        v = fpu.mxcsr;
        if (!write_linear(mem, s, *ea, std::as_bytes(std::span(&v, 1)))) return fault(name, text);
      }
      EmulationOutcome o = advance(r, in, name);
      o.fpu_changed = load;
      return o;
    }
    case ZYDIS_MNEMONIC_POPCNT: {
      GprRef dst = resolve_gpr(r, ops[0].reg.value);
      if (dst.slot == nullptr) return {Kind::kUnknown, 0, false, "popcnt", text};
      std::uint64_t src = 0;
      if (ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER) {
        GprRef sr = resolve_gpr(r, ops[1].reg.value);
        if (sr.slot == nullptr) return {Kind::kUnknown, 0, false, "popcnt", text};
        src = *sr.slot;
      } else {
        auto ea = effective_address(in, ops[1], r, s, mode.long64);
        if (!ea) return fault("popcnt", text);
        if (read_linear(mem, s, *ea, std::as_writable_bytes(std::span(&src, 1)).first(in.operand_width / 8)) !=
            in.operand_width / 8u)
          return fault("popcnt", text);
      }
      src &= width_mask(in.operand_width);
      write_gpr(dst, static_cast<std::uint64_t>(std::popcount(src)));
      r.rflags &= ~(kRflagsCf | kRflagsPf | kRflagsAf | kRflagsZf | kRflagsSf | kRflagsOf);
      if (src == 0) r.rflags |= kRflagsZf;
      return advance(r, in, "popcnt");
    }
    case ZYDIS_MNEMONIC_CMPXCHG16B: {
      // Not atomic against other vCPUs running natively; kiln hides CX16 on hosts that need
      // this, so only code that ignores CPUID gets here.
      auto ea = effective_address(in, ops[0], r, s, mode.long64);
      if (!ea) return fault("cmpxchg16b", text);
      if ((*ea & 0xf) != 0) return {Kind::kInjectException, kVectorGeneralProtection, false, "cmpxchg16b", text};
      std::array<std::uint64_t, 2> m{};
      if (read_linear(mem, s, *ea, std::as_writable_bytes(std::span(m))) != 16) return fault("cmpxchg16b", text);
      if (m[0] == r.rax && m[1] == r.rdx) {
        const std::array<std::uint64_t, 2> nv{r.rbx, r.rcx};
        if (!write_linear(mem, s, *ea, std::as_bytes(std::span(nv)))) return fault("cmpxchg16b", text);
        r.rflags |= kRflagsZf;
      } else {
        r.rax = m[0];
        r.rdx = m[1];
        r.rflags &= ~kRflagsZf;
      }
      return advance(r, in, "cmpxchg16b");
    }
    default:
      return {Kind::kUnknown, 0, false, ZydisMnemonicGetString(in.mnemonic), text};
  }
}

}  // namespace kiln::x86
