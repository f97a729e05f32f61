#include "kvm/vcpu.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <array>
#include <bit>
#include <cstring>

#include "kvm/flex_buffer.h"

namespace kiln::kvm {

namespace {

kvm_run* run_of(const Mmap& m) { return reinterpret_cast<kvm_run*>(m.data()); }

kvm_segment to_kvm(const x86::Segment& s) {
  kvm_segment k{};
  k.base = s.base;
  k.limit = s.limit;
  k.selector = s.selector;
  k.type = s.type;
  k.present = s.present;
  k.dpl = s.dpl;
  k.db = s.db;
  k.s = s.s;
  k.l = s.l;
  k.g = s.g;
  k.avl = s.avl;
  k.unusable = s.unusable;
  return k;
}

x86::Segment from_kvm(const kvm_segment& k) {
  x86::Segment s;
  s.base = k.base;
  s.limit = k.limit;
  s.selector = k.selector;
  s.type = k.type;
  s.present = k.present;
  s.dpl = k.dpl;
  s.db = k.db;
  s.s = k.s;
  s.l = k.l;
  s.g = k.g;
  s.avl = k.avl;
  s.unusable = k.unusable;
  return s;
}

static_assert(sizeof(kvm_regs) == sizeof(x86::Registers), "x86::Registers mirrors kvm_regs field for field");

}  // namespace

Result<VcpuExit> Vcpu::run() {
  kvm_run* r = run_of(run_);
  if (::ioctl(fd_.get(), KVM_RUN, 0) != 0) {
    if (errno == EINTR || errno == EAGAIN) return Interrupted{};
    return errno_error("KVM_RUN on vCPU {}", id_);
  }
  switch (r->exit_reason) {
    case KVM_EXIT_IO: {
      const std::size_t len = static_cast<std::size_t>(r->io.size) * r->io.count;
      if (r->io.data_offset > run_.size() || len > run_.size() - r->io.data_offset)
        return plain_error("KVM_EXIT_IO data outside kvm_run (offset {}, {} bytes)", r->io.data_offset, len);
      std::span<std::byte> data(run_.data() + r->io.data_offset, len);
      if (r->io.direction == KVM_EXIT_IO_OUT) return IoOut{r->io.port, r->io.size, data};
      return IoIn{r->io.port, r->io.size, data};
    }
    case KVM_EXIT_MMIO: {
      const std::size_t len = std::min<std::size_t>(r->mmio.len, sizeof(r->mmio.data));
      std::span<std::byte> data(reinterpret_cast<std::byte*>(r->mmio.data), len);
      if (r->mmio.is_write != 0) return MmioWrite{r->mmio.phys_addr, data};
      return MmioRead{r->mmio.phys_addr, data};
    }
    case KVM_EXIT_HLT: return Hlt{};
    case KVM_EXIT_SHUTDOWN: return Shutdown{};
    case KVM_EXIT_SYSTEM_EVENT: {
      SystemEvent::Type t = SystemEvent::kOther;
      if (r->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN) t = SystemEvent::kShutdown;
      else if (r->system_event.type == KVM_SYSTEM_EVENT_RESET) t = SystemEvent::kReset;
      else if (r->system_event.type == KVM_SYSTEM_EVENT_CRASH) t = SystemEvent::kCrash;
      return SystemEvent{t, r->system_event.type};
    }
    case KVM_EXIT_INTERNAL_ERROR: {
      InternalError ie{r->internal.suberror, {}, r->internal.suberror == KVM_INTERNAL_ERROR_EMULATION};
      const std::uint32_t n = std::min<std::uint32_t>(r->internal.ndata, 16);
      ie.data.assign(r->internal.data, r->internal.data + n);
      if (ie.emulation && r->emulation_failure.ndata >= 3 &&
          (r->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) != 0) {
        const std::size_t len = std::min<std::size_t>(r->emulation_failure.insn_size,
                                                      sizeof(r->emulation_failure.insn_bytes));
        const auto* b = reinterpret_cast<const std::byte*>(r->emulation_failure.insn_bytes);
        ie.instruction.assign(b, b + len);
      }
      return ie;
    }
    case KVM_EXIT_FAIL_ENTRY: return FailEntry{r->fail_entry.hardware_entry_failure_reason};
    case KVM_EXIT_INTR: return Interrupted{};
    case KVM_EXIT_DEBUG: return Debug{};
    case KVM_EXIT_X86_WRMSR: return MsrWrite{r->msr.index, r->msr.data};
    default: return Unknown{r->exit_reason};
  }
}

void Vcpu::set_immediate_exit(bool on) {
  // A plain byte the kernel reads at KVM_RUN entry; volatile so the store is not elided.
  *reinterpret_cast<volatile std::uint8_t*>(&run_of(run_)->immediate_exit) = on ? 1 : 0;
}

void Vcpu::complete_msr_write(bool ok) { run_of(run_)->msr.error = ok ? 0 : 1; }

Result<x86::Registers> Vcpu::get_regs() const {
  kvm_regs k{};
  if (::ioctl(fd_.get(), KVM_GET_REGS, &k) != 0) return errno_error("KVM_GET_REGS");
  return std::bit_cast<x86::Registers>(k);
}

Result<void> Vcpu::set_regs(const x86::Registers& r) const {
  kvm_regs k = std::bit_cast<kvm_regs>(r);
  if (::ioctl(fd_.get(), KVM_SET_REGS, &k) != 0) return errno_error("KVM_SET_REGS");
  return {};
}

Result<x86::SpecialRegisters> Vcpu::get_sregs() const {
  kvm_sregs k{};
  if (::ioctl(fd_.get(), KVM_GET_SREGS, &k) != 0) return errno_error("KVM_GET_SREGS");
  x86::SpecialRegisters s;
  s.cs = from_kvm(k.cs); s.ds = from_kvm(k.ds); s.es = from_kvm(k.es); s.fs = from_kvm(k.fs);
  s.gs = from_kvm(k.gs); s.ss = from_kvm(k.ss); s.tr = from_kvm(k.tr); s.ldt = from_kvm(k.ldt);
  s.gdt = {k.gdt.base, k.gdt.limit};
  s.idt = {k.idt.base, k.idt.limit};
  s.cr0 = k.cr0; s.cr2 = k.cr2; s.cr3 = k.cr3; s.cr4 = k.cr4; s.cr8 = k.cr8;
  s.efer = k.efer; s.apic_base = k.apic_base;
  return s;
}

Result<void> Vcpu::set_sregs(const x86::SpecialRegisters& s) const {
  // Start from KVM's view so fields kiln does not model (the interrupt bitmap, apic_base) stay.
  kvm_sregs k{};
  if (::ioctl(fd_.get(), KVM_GET_SREGS, &k) != 0) return errno_error("KVM_GET_SREGS");
  k.cs = to_kvm(s.cs); k.ds = to_kvm(s.ds); k.es = to_kvm(s.es); k.fs = to_kvm(s.fs);
  k.gs = to_kvm(s.gs); k.ss = to_kvm(s.ss); k.tr = to_kvm(s.tr); k.ldt = to_kvm(s.ldt);
  k.gdt.base = s.gdt.base; k.gdt.limit = s.gdt.limit;
  k.idt.base = s.idt.base; k.idt.limit = s.idt.limit;
  k.cr0 = s.cr0; k.cr3 = s.cr3; k.cr4 = s.cr4; k.efer = s.efer;
  if (::ioctl(fd_.get(), KVM_SET_SREGS, &k) != 0) return errno_error("KVM_SET_SREGS");
  return {};
}

// FCW and MXCSR go through the XSAVE area (on nested-PVM hosts KVM_GET/SET_FPU read zeros and
// write nothing). Its legacy region keeps FCW at byte 0 and MXCSR at byte 24; MXCSR only counts
// when the header's xstate_bv (byte 512) has SSE (bit 1) set.
namespace {
using XsaveArea = std::array<std::byte, kXsaveSize>;
constexpr std::size_t kXsaveFcw = 0, kXsaveMxcsr = 24, kXsaveXstateBv = 512;
}  // namespace

Result<x86::FpuState> Vcpu::get_fpu() const {
  XsaveArea xs{};
  if (::ioctl(fd_.get(), kIoctlGetXsave, xs.data()) != 0) return errno_error("KVM_GET_XSAVE");
  x86::FpuState st;
  std::memcpy(&st.fcw, xs.data() + kXsaveFcw, 2);
  std::memcpy(&st.mxcsr, xs.data() + kXsaveMxcsr, 4);
  return st;
}

Result<void> Vcpu::set_fpu(const x86::FpuState& s) const {
  XsaveArea xs{};
  if (::ioctl(fd_.get(), kIoctlGetXsave, xs.data()) != 0) return errno_error("KVM_GET_XSAVE");
  std::memcpy(xs.data() + kXsaveFcw, &s.fcw, 2);
  std::memcpy(xs.data() + kXsaveMxcsr, &s.mxcsr, 4);
  std::uint64_t xstate_bv;
  std::memcpy(&xstate_bv, xs.data() + kXsaveXstateBv, 8);
  xstate_bv |= 0x3;  // x87 and SSE state present
  std::memcpy(xs.data() + kXsaveXstateBv, &xstate_bv, 8);
  if (::ioctl(fd_.get(), kIoctlSetXsave, xs.data()) != 0) return errno_error("KVM_SET_XSAVE");
  return {};
}

Result<void> Vcpu::set_cpuid(const std::vector<x86::CpuidEntry>& table) const {
  FlexBuffer<kvm_cpuid_entry2> buf(table.size());
  for (std::size_t i = 0; i < table.size(); ++i) {
    kvm_cpuid_entry2 e{};
    e.function = table[i].function;
    e.index = table[i].index;
    e.flags = table[i].flags;
    e.eax = table[i].eax;
    e.ebx = table[i].ebx;
    e.ecx = table[i].ecx;
    e.edx = table[i].edx;
    buf.set(i, e);
  }
  if (::ioctl(fd_.get(), kIoctlSetCpuid2, buf.data()) != 0) return errno_error("KVM_SET_CPUID2");
  return {};
}

Result<std::size_t> Vcpu::set_msrs_until_refused(const std::vector<std::pair<std::uint32_t, std::uint64_t>>& msrs) const {
  FlexBuffer<kvm_msr_entry> buf(msrs.size());
  for (std::size_t i = 0; i < msrs.size(); ++i) {
    kvm_msr_entry e{};
    e.index = msrs[i].first;
    e.data = msrs[i].second;
    buf.set(i, e);
  }
  const int set = ::ioctl(fd_.get(), kIoctlSetMsrs, buf.data());
  if (set < 0) return errno_error("KVM_SET_MSRS");
  return static_cast<std::size_t>(set);
}

Result<std::uint64_t> Vcpu::get_msr(std::uint32_t index) const {
  FlexBuffer<kvm_msr_entry> buf(1);
  kvm_msr_entry e{};
  e.index = index;
  buf.set(0, e);
  const int n = ::ioctl(fd_.get(), kIoctlGetMsrs, buf.data());
  if (n < 0) return errno_error("KVM_GET_MSRS {:#x}", index);
  if (n != 1) return plain_error("KVM has no MSR {:#x} for this vCPU", index);
  return buf.get(0).data;
}

Result<bool> Vcpu::set_msr(std::uint32_t index, std::uint64_t value) const {
  FlexBuffer<kvm_msr_entry> buf(1);
  kvm_msr_entry e{};
  e.index = index;
  e.data = value;
  buf.set(0, e);
  const int n = ::ioctl(fd_.get(), kIoctlSetMsrs, buf.data());
  if (n < 0) return errno_error("KVM_SET_MSRS {:#x}", index);
  return n == 1;
}

Result<void> Vcpu::inject_exception(std::uint8_t vector, std::optional<std::uint32_t> error_code) const {
  kvm_vcpu_events ev{};
  if (::ioctl(fd_.get(), KVM_GET_VCPU_EVENTS, &ev) != 0) return errno_error("KVM_GET_VCPU_EVENTS");
  ev.exception.injected = 1;
  ev.exception.nr = vector;
  ev.exception.has_error_code = error_code ? 1 : 0;
  ev.exception.error_code = error_code.value_or(0);
  ev.flags = 0;  // leave NMI, SIPI and shadow state as they are
  if (::ioctl(fd_.get(), KVM_SET_VCPU_EVENTS, &ev) != 0) return errno_error("KVM_SET_VCPU_EVENTS");
  return {};
}

Result<std::uint32_t> Vcpu::tsc_khz() const {
  const int khz = ::ioctl(fd_.get(), KVM_GET_TSC_KHZ, 0);
  if (khz <= 0) return errno_error("KVM_GET_TSC_KHZ");
  return static_cast<std::uint32_t>(khz);
}

}  // namespace kiln::kvm

namespace kiln::kvm {

namespace {

// A kvm_* structure as bytes, and back: the size must be the structure's.
template <class T>
std::vector<std::byte> bytes_of(const T& v) {
  std::vector<std::byte> out(sizeof(T));
  std::memcpy(out.data(), &v, sizeof(T));
  return out;
}
template <class T>
Result<T> from_bytes(std::span<const std::byte> b, const char* what) {
  if (b.size() != sizeof(T)) return plain_error("{}: {} bytes, not the {} of this KVM's structure", what, b.size(), sizeof(T));
  T v;
  std::memcpy(&v, b.data(), sizeof(T));
  return v;
}

}  // namespace

Result<void> Vcpu::set_tsc_khz(std::uint32_t khz) const {
  if (::ioctl(fd_.get(), KVM_SET_TSC_KHZ, static_cast<unsigned long>(khz)) != 0) return errno_error("KVM_SET_TSC_KHZ {}", khz);
  return {};
}

Result<std::vector<std::byte>> Vcpu::get_sregs_raw() const {
  kvm_sregs k{};
  if (::ioctl(fd_.get(), KVM_GET_SREGS, &k) != 0) return errno_error("KVM_GET_SREGS");
  return bytes_of(k);
}

Result<void> Vcpu::set_sregs_raw(std::span<const std::byte> sregs) const {
  KILN_ASSIGN(auto k, from_bytes<kvm_sregs>(sregs, "sregs"));
  if (::ioctl(fd_.get(), KVM_SET_SREGS, &k) != 0) return errno_error("KVM_SET_SREGS");
  return {};
}

Result<std::vector<std::byte>> Vcpu::get_xsave() const {
  std::vector<std::byte> xs(kXsaveSize);
  if (::ioctl(fd_.get(), kIoctlGetXsave, xs.data()) != 0) return errno_error("KVM_GET_XSAVE");
  return xs;
}

Result<void> Vcpu::set_xsave(std::span<const std::byte> xsave) const {
  if (xsave.size() != kXsaveSize) return plain_error("xsave: {} bytes, not {}", xsave.size(), kXsaveSize);
  std::vector<std::byte> xs(xsave.begin(), xsave.end());
  if (::ioctl(fd_.get(), kIoctlSetXsave, xs.data()) != 0) return errno_error("KVM_SET_XSAVE");
  return {};
}

Result<std::vector<std::pair<std::uint32_t, std::uint64_t>>> Vcpu::get_xcrs() const {
  kvm_xcrs k{};
  if (::ioctl(fd_.get(), KVM_GET_XCRS, &k) != 0) return errno_error("KVM_GET_XCRS");
  std::vector<std::pair<std::uint32_t, std::uint64_t>> out;
  for (std::uint32_t i = 0; i < k.nr_xcrs && i < KVM_MAX_XCRS; ++i) out.emplace_back(k.xcrs[i].xcr, k.xcrs[i].value);
  return out;
}

Result<void> Vcpu::set_xcrs(const std::vector<std::pair<std::uint32_t, std::uint64_t>>& xcrs) const {
  if (xcrs.size() > KVM_MAX_XCRS) return plain_error("xcrs: {} registers, KVM takes at most {}", xcrs.size(), KVM_MAX_XCRS);
  // A host without XSAVE has no XCRs (KVM_GET_XCRS gives none) and refuses KVM_SET_XCRS outright:
  // none to set is nothing to do.
  if (xcrs.empty()) return {};
  kvm_xcrs k{};
  k.nr_xcrs = static_cast<std::uint32_t>(xcrs.size());
  for (std::size_t i = 0; i < xcrs.size(); ++i) k.xcrs[i] = {xcrs[i].first, 0, xcrs[i].second};
  if (::ioctl(fd_.get(), KVM_SET_XCRS, &k) != 0) return errno_error("KVM_SET_XCRS");
  return {};
}

Result<std::vector<std::pair<std::uint32_t, std::uint64_t>>> Vcpu::get_msrs(std::span<const std::uint32_t> indices) const {
  // KVM_GET_MSRS stops at the first MSR it does not have: ask again past it.
  std::vector<std::pair<std::uint32_t, std::uint64_t>> out;
  std::size_t at = 0;
  while (at < indices.size()) {
    const std::size_t n = indices.size() - at;
    FlexBuffer<kvm_msr_entry> buf(n);
    for (std::size_t i = 0; i < n; ++i) {
      kvm_msr_entry e{};
      e.index = indices[at + i];
      buf.set(i, e);
    }
    const int got = ::ioctl(fd_.get(), kIoctlGetMsrs, buf.data());
    if (got < 0) return errno_error("KVM_GET_MSRS");
    for (int i = 0; i < got; ++i) out.emplace_back(buf.get(static_cast<std::size_t>(i)).index, buf.get(static_cast<std::size_t>(i)).data);
    at += static_cast<std::size_t>(got) + 1;  // the one it stopped at is not this vCPU's
  }
  return out;
}

Result<void> Vcpu::set_msrs(const std::vector<std::pair<std::uint32_t, std::uint64_t>>& msrs) const {
  KILN_ASSIGN(const std::size_t set, set_msrs_until_refused(msrs));
  if (set != msrs.size())
    return plain_error("KVM_SET_MSRS refused MSR {:#x} (the {}th of {})", msrs[set].first, set + 1, msrs.size());
  return {};
}

Result<std::vector<std::byte>> Vcpu::get_lapic() const {
  kvm_lapic_state s{};
  if (::ioctl(fd_.get(), KVM_GET_LAPIC, &s) != 0) return errno_error("KVM_GET_LAPIC");
  return bytes_of(s);
}

Result<void> Vcpu::set_lapic(std::span<const std::byte> lapic) const {
  KILN_ASSIGN(auto s, from_bytes<kvm_lapic_state>(lapic, "lapic"));
  if (::ioctl(fd_.get(), KVM_SET_LAPIC, &s) != 0) return errno_error("KVM_SET_LAPIC");
  return {};
}

Result<std::vector<std::byte>> Vcpu::get_vcpu_events() const {
  kvm_vcpu_events ev{};
  if (::ioctl(fd_.get(), KVM_GET_VCPU_EVENTS, &ev) != 0) return errno_error("KVM_GET_VCPU_EVENTS");
  return bytes_of(ev);
}

Result<void> Vcpu::set_vcpu_events(std::span<const std::byte> events) const {
  KILN_ASSIGN(auto ev, from_bytes<kvm_vcpu_events>(events, "vcpu events"));
  // Everything KVM gave is valid to set back: NMI, SIPI vector and interrupt shadow included.
  ev.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR | KVM_VCPUEVENT_VALID_SHADOW;
  if (::ioctl(fd_.get(), KVM_SET_VCPU_EVENTS, &ev) != 0) return errno_error("KVM_SET_VCPU_EVENTS");
  return {};
}

Result<std::uint32_t> Vcpu::get_mp_state() const {
  kvm_mp_state s{};
  if (::ioctl(fd_.get(), KVM_GET_MP_STATE, &s) != 0) return errno_error("KVM_GET_MP_STATE");
  return s.mp_state;
}

Result<void> Vcpu::set_mp_state(std::uint32_t state) const {
  kvm_mp_state s{state};
  if (::ioctl(fd_.get(), KVM_SET_MP_STATE, &s) != 0) return errno_error("KVM_SET_MP_STATE {}", state);
  return {};
}

Result<std::vector<std::byte>> Vcpu::get_debugregs() const {
  kvm_debugregs d{};
  if (::ioctl(fd_.get(), KVM_GET_DEBUGREGS, &d) != 0) return errno_error("KVM_GET_DEBUGREGS");
  return bytes_of(d);
}

Result<void> Vcpu::set_debugregs(std::span<const std::byte> debugregs) const {
  KILN_ASSIGN(auto d, from_bytes<kvm_debugregs>(debugregs, "debug registers"));
  if (::ioctl(fd_.get(), KVM_SET_DEBUGREGS, &d) != 0) return errno_error("KVM_SET_DEBUGREGS");
  return {};
}

Result<VcpuState> Vcpu::save_state(std::span<const std::uint32_t> msr_indices) const {
  VcpuState s;
  // Events first: what is pending must be read before anything else could change it.
  KILN_ASSIGN(s.events, get_vcpu_events());
  KILN_ASSIGN(s.mp_state, get_mp_state());
  KILN_ASSIGN(s.regs, get_regs());
  KILN_ASSIGN(s.sregs, get_sregs_raw());
  KILN_ASSIGN(s.xsave, get_xsave());
  KILN_ASSIGN(s.xcrs, get_xcrs());
  KILN_ASSIGN(s.debugregs, get_debugregs());
  KILN_ASSIGN(s.lapic, get_lapic());
  KILN_ASSIGN(s.msrs, get_msrs(msr_indices));
  KILN_ASSIGN(s.tsc_khz, tsc_khz());
  return s;
}

std::optional<CoalescedRing> Vcpu::coalesced_ring(std::uint32_t page) const {
  const std::size_t off = std::size_t{page} * CoalescedRing::kPageSize;
  if (page == 0 || off + CoalescedRing::kPageSize > run_.size()) return std::nullopt;
  return CoalescedRing(std::span<std::byte, CoalescedRing::kPageSize>(run_.data() + off, CoalescedRing::kPageSize));
}

Result<void> Vcpu::restore_state(const VcpuState& s) const {
  // The order Firecracker and QEMU use: the TSC rate before the MSRs (the TSC MSR scales with it),
  // sregs before the LAPIC (APIC base), the LAPIC before the events, the MP state last.
  KILN_CHECK(set_tsc_khz(s.tsc_khz));
  KILN_CHECK(set_regs(s.regs));
  KILN_CHECK(set_sregs_raw(s.sregs));
  KILN_CHECK(set_xsave(s.xsave));
  KILN_CHECK(set_xcrs(s.xcrs));
  KILN_CHECK(set_debugregs(s.debugregs));
  KILN_CHECK(set_lapic(s.lapic));
  KILN_CHECK(set_msrs(s.msrs));
  KILN_CHECK(set_vcpu_events(s.events));
  KILN_CHECK(set_mp_state(s.mp_state));
  return {};
}

}  // namespace kiln::kvm
