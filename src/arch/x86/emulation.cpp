#include "arch/x86/emulation.h"

#include <algorithm>
#include <bit>
#include <optional>

#include <Zydis/Zydis.h>
#include <fmt/format.h>

#include "arch/x86/bit_ops.h"
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

// A source operand that is a general-purpose register or `bytes` of memory, zero-extended.
// kUnknown: a register kiln does not model; kFault: memory it cannot read.
struct SourceValue {
  std::uint64_t value = 0;
  std::optional<Kind> failure;
};

SourceValue read_source(const ZydisDecodedInstruction& in, const ZydisDecodedOperand& op, Registers& r,
                        const SpecialRegisters& s, const GuestMemory& mem, bool long64, std::size_t bytes) {
  SourceValue v;
  if (op.type == ZYDIS_OPERAND_TYPE_REGISTER) {
    GprRef g = resolve_gpr(r, op.reg.value);
    if (g.slot == nullptr) v.failure = Kind::kUnknown;
    else v.value = *g.slot & width_mask(static_cast<unsigned>(bytes * 8));
    return v;
  }
  auto ea = effective_address(in, op, r, s, long64);
  if (!ea || read_linear(mem, s, *ea, std::as_writable_bytes(std::span(&v.value, 1)).first(bytes)) != bytes)
    v.failure = Kind::kFault;
  return v;
}

EmulationOutcome advance(Registers& r, const ZydisDecodedInstruction& in, std::string name) {
  r.rip += in.length;
  return {Kind::kEmulated, 0, false, std::move(name), {}};
}

EmulationOutcome fault(std::string name, std::string why) { return {Kind::kFault, 0, false, std::move(name), std::move(why)}; }

// The BMI1/BMI2/LZCNT bit instructions (bit_ops.h holds what each computes). Operands in Intel
// order: the destination (for MULX the high half, then the low half), then the sources.
EmulationOutcome emulate_bit_op(BitOp op, const ZydisDecodedInstruction& in, const ZydisDecodedOperand* ops,
                                Registers& r, const SpecialRegisters& s, const GuestMemory& mem, bool long64,
                                const char* text) {
  const std::string name(bit_op_name(op));
  const unsigned width = in.operand_width;
  GprRef dst = resolve_gpr(r, ops[0].reg.value);
  if ((width != 16 && width != 32 && width != 64) || ops[0].type != ZYDIS_OPERAND_TYPE_REGISTER || dst.slot == nullptr)
    return {Kind::kUnknown, 0, false, name, text};
  std::uint64_t a = 0, b = 0;
  if (op == BitOp::kMulx) {
    a = r.rdx & width_mask(width);
    const auto sb = read_source(in, ops[2], r, s, mem, long64, width / 8);
    if (sb.failure) return {*sb.failure, 0, false, name, text};
    b = sb.value;
  } else {
    const auto sa = read_source(in, ops[1], r, s, mem, long64, width / 8);
    if (sa.failure) return {*sa.failure, 0, false, name, text};
    a = sa.value;
    if (in.operand_count_visible > 2) {
      if (ops[2].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
        b = ops[2].imm.value.u;
      } else {
        const auto sb = read_source(in, ops[2], r, s, mem, long64, width / 8);
        if (sb.failure) return {*sb.failure, 0, false, name, text};
        b = sb.value;
      }
    }
  }
  const BitOpResult res = bit_op(op, width, a, b, r.rflags);
  if (op == BitOp::kMulx) {
    GprRef lo = resolve_gpr(r, ops[1].reg.value);
    if (lo.slot == nullptr) return {Kind::kUnknown, 0, false, name, text};
    write_gpr(lo, res.value);
    write_gpr(dst, res.high);  // last: with one register for both, it holds the high half
  } else {
    write_gpr(dst, res.value);
  }
  r.rflags = res.rflags;
  return advance(r, in, name);
}

// LSL and LAR: the 8-byte descriptor a selector names, or nothing when the selector is null or
// past its table's limit (ZF=0 then, not a fault). A table the guest's page tables do not map
// is a fault.
struct DescriptorLookup {
  bool faulted = false;
  std::optional<std::uint64_t> raw;
};

DescriptorLookup load_descriptor(const GuestMemory& mem, const SpecialRegisters& s, std::uint16_t selector) {
  const bool ldt = (selector & 4) != 0;
  const std::uint32_t offset = selector & ~7u;
  if (!ldt && offset == 0) return {};
  std::uint64_t base = s.gdt.base;
  std::uint32_t limit = s.gdt.limit;
  if (ldt) {
    if (s.ldt.unusable != 0 || s.ldt.present == 0) return {};
    base = s.ldt.base;
    limit = s.ldt.limit;
  }
  if (offset + 7u > limit) return {};
  std::uint64_t raw = 0;
  if (read_linear(mem, s, base + offset, std::as_writable_bytes(std::span(&raw, 1))) != sizeof raw) return {true, {}};
  return {false, raw};
}

// The selector operand of LSL, LAR, VERR and VERW (a 16-bit register or memory word), the
// descriptor it names and the CPL it is checked at; `failure` when the operand or the descriptor
// table cannot be read.
struct SelectorOperand {
  std::optional<EmulationOutcome> failure;
  std::uint16_t selector = 0;
  std::optional<std::uint64_t> raw;
  unsigned cpl = 0;
};

SelectorOperand read_selector(const ZydisDecodedInstruction& in, const ZydisDecodedOperand& op, Registers& r,
                              const SpecialRegisters& s, const GuestMemory& mem, bool long64, const char* name,
                              const char* text) {
  const auto sv = read_source(in, op, r, s, mem, long64, 2);
  if (sv.failure) return {EmulationOutcome{*sv.failure, 0, false, name, text}};
  const auto selector = static_cast<std::uint16_t>(sv.value);
  const auto d = load_descriptor(mem, s, selector);
  if (d.faulted) return {fault(name, text)};
  return {std::nullopt, selector, d.raw, (s.cr0 & kCr0Pe) == 0 ? 0u : (s.cs.selector & 3u)};
}

// A segment descriptor's type, S bit (clear for system descriptors) and DPL.
struct DescriptorKind {
  unsigned type;
  bool system;
  unsigned dpl;
};

DescriptorKind descriptor_kind(std::uint64_t raw) {
  return {static_cast<unsigned>((raw >> 40) & 0xf), ((raw >> 44) & 1) == 0, static_cast<unsigned>((raw >> 45) & 3)};
}

// The privilege rule LSL, LAR, VERR and VERW share: conforming code at any privilege, everything
// else only at DPL >= max(CPL, RPL).
bool privilege_allows(const DescriptorKind& d, std::uint16_t selector, unsigned cpl) {
  if (!d.system && (d.type & 0xc) == 0xc) return true;
  return d.dpl >= cpl && d.dpl >= (selector & 3u);
}

// Whether LSL (or LAR) reports on this descriptor at this CPL: code and data segments, and the
// system types each accepts.
bool lsl_lar_accepts(std::uint64_t raw, std::uint16_t selector, unsigned cpl, bool long_mode, bool lar) {
  const DescriptorKind d = descriptor_kind(raw);
  if (d.system) {
    bool ok = false;
    switch (d.type) {
      case 0x2: case 0x9: case 0xb: ok = true; break;                 // LDT, available and busy TSS
      case 0x1: case 0x3: ok = !long_mode; break;                     // 16-bit TSS
      case 0xc: ok = lar; break;                                      // call gate
      case 0x4: case 0x5: ok = lar && !long_mode; break;              // 16-bit call gate, task gate
      default: break;
    }
    if (!ok) return false;
  }
  return privilege_allows(d, selector, cpl);
}

// Whether VERR (or VERW) finds this descriptor readable (writable) at this CPL: code and data
// segments only; data is always readable and writable with its W bit, code is never writable and
// readable with its R bit.
bool verr_verw_accepts(std::uint64_t raw, std::uint16_t selector, unsigned cpl, bool write) {
  const DescriptorKind d = descriptor_kind(raw);
  if (d.system) return false;
  const bool code = (d.type & 0x8) != 0;
  if (write ? (code || (d.type & 0x2) == 0) : (code && (d.type & 0x2) == 0)) return false;
  return privilege_allows(d, selector, cpl);
}

}  // namespace

FailedInstruction emulate_failed_instruction(std::span<const std::byte> fetched_by_kvm, Registers& regs,
                                             const SpecialRegisters& sregs, FpuState& fpu, const GuestMemory& mem) {
  FailedInstruction f;
  if (!fetched_by_kvm.empty()) {
    Registers r = regs;
    FpuState fp = fpu;
    const auto kvm_bytes = fetched_by_kvm.first(std::min(fetched_by_kvm.size(), f.bytes.size()));
    f.outcome = emulate_instruction(kvm_bytes, r, sregs, fp, mem);
    if (f.outcome.handled()) {
      std::copy(kvm_bytes.begin(), kvm_bytes.end(), f.bytes.begin());
      f.length = kvm_bytes.size();
      f.from_kvm = true;
      regs = r;
      fpu = fp;
      return f;
    }
  }
  f.length = fetch_instruction(mem, sregs, regs, f.bytes);
  f.outcome = emulate_instruction(f.used(), regs, sregs, fpu, mem);
  return f;
}

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
      const auto sv = read_source(in, ops[1], r, s, mem, mode.long64, in.operand_width / 8u);
      if (sv.failure) return {*sv.failure, 0, false, "popcnt", text};
      const std::uint64_t src = sv.value;
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
    case ZYDIS_MNEMONIC_LSL:
    case ZYDIS_MNEMONIC_LAR: {
      // Linux's NMI and #DB entries read the CPU number this way (the limit of the CPUNODE
      // segment) when the CPU has FSGSBASE but no RDPID; KVM's emulator has neither instruction.
      const bool lsl = in.mnemonic == ZYDIS_MNEMONIC_LSL;
      const char* name = lsl ? "lsl" : "lar";
      GprRef dst = resolve_gpr(r, ops[0].reg.value);
      if (dst.slot == nullptr) return {Kind::kUnknown, 0, false, name, text};
      const auto sel = read_selector(in, ops[1], r, s, mem, mode.long64, name, text);
      if (sel.failure) return *sel.failure;
      if (sel.raw && lsl_lar_accepts(*sel.raw, sel.selector, sel.cpl, (s.efer & kEferLma) != 0, !lsl)) {
        const std::uint64_t raw = *sel.raw;
        std::uint64_t value = 0;
        if (lsl) {
          value = (raw & 0xffff) | (((raw >> 48) & 0xf) << 16);
          if (((raw >> 55) & 1) != 0) value = (value << 12) | 0xfff;  // 4 KiB granularity
        } else {
          value = (raw >> 32) & (in.operand_width == 16 ? 0xff00u : 0x00f0ff00u);
        }
        write_gpr(dst, value & 0xffff'ffffull);
        r.rflags |= kRflagsZf;
      } else {
        r.rflags &= ~kRflagsZf;
      }
      return advance(r, in, name);
    }
    case ZYDIS_MNEMONIC_VERR:
    case ZYDIS_MNEMONIC_VERW: {
      // Linux 6.12 and later clear the CPU's buffers with VERW on the way back to user space
      // (the MDS and TSA mitigations), on a selector it never checks the answer for. kiln gives
      // the architectural answer (ZF), and runs a VERW of its own on its own data segment, so
      // the buffer clearing the guest asked for happens on this CPU too.
      const bool write = in.mnemonic == ZYDIS_MNEMONIC_VERW;
      const char* name = write ? "verw" : "verr";
      const auto sel = read_selector(in, ops[0], r, s, mem, mode.long64, name, text);
      if (sel.failure) return *sel.failure;
      if (sel.raw && verr_verw_accepts(*sel.raw, sel.selector, sel.cpl, write)) {
        r.rflags |= kRflagsZf;
      } else {
        r.rflags &= ~kRflagsZf;
      }
      if (write) {
        std::uint16_t own = 0;
        asm volatile("mov %%ds, %0\n\tverw %0" : "+m"(own) : : "cc");
      }
      return advance(r, in, name);
    }
    default:
      if (const auto op = bit_op_from_name(ZydisMnemonicGetString(in.mnemonic)))
        return emulate_bit_op(*op, in, ops, r, s, mem, mode.long64, text);
      return {Kind::kUnknown, 0, false, ZydisMnemonicGetString(in.mnemonic), text};
  }
}

}  // namespace kiln::x86
