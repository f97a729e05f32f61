#pragma once
// One vCPU: its fd, its kvm_run mapping, and the exits KVM_RUN hands back as a typed variant.
#include <cstdint>
#include <optional>
#include <utility>
#include <span>
#include <variant>
#include <vector>

#include "arch/x86/cpu_state.h"
#include "arch/x86/cpuid.h"
#include "base/error.h"
#include "base/mmap.h"
#include "base/unique_fd.h"
#include "kvm/coalesced.h"
#include "kvm/stats.h"

namespace kiln::kvm {

// Spans in an exit point into kvm_run: valid until the next run().
struct IoIn { std::uint16_t port; std::uint8_t size; std::span<std::byte> data; };
struct IoOut { std::uint16_t port; std::uint8_t size; std::span<const std::byte> data; };
struct MmioRead { std::uint64_t addr; std::span<std::byte> data; };
struct MmioWrite { std::uint64_t addr; std::span<const std::byte> data; };
struct Hlt {};
struct Shutdown {};  // triple fault
struct SystemEvent { enum Type { kShutdown, kReset, kCrash, kOther } type; std::uint32_t raw; };
// For emulation failures, `instruction` holds the bytes KVM's emulator fetched when the kernel
// reports them (Linux 5.14+): the instruction as it was when it failed, which memory may no longer
// hold (another vCPU may have patched the text since, as text_poke does around an int3).
struct InternalError {
  std::uint32_t suberror;
  std::vector<std::uint64_t> data;
  bool emulation;
  std::vector<std::byte> instruction;
};
struct FailEntry { std::uint64_t reason; };
struct Interrupted {};  // a signal or immediate_exit made KVM_RUN return
struct Debug {};
// A guest WRMSR that Vm::trap_msr_writes sent to kiln. The guest goes on after it when kiln calls
// Vcpu::complete_msr_write (with a #GP if refused) before the next run().
struct MsrWrite { std::uint32_t index; std::uint64_t value; };
struct Unknown { std::uint32_t reason; };

using VcpuExit = std::variant<IoIn, IoOut, MmioRead, MmioWrite, Hlt, Shutdown, SystemEvent, InternalError,
                              FailEntry, Interrupted, Debug, MsrWrite, Unknown>;

// A vCPU's whole architectural state, as a snapshot needs it. The kvm_* structures are kept as
// the bytes KVM gives (their layout is KVM's ABI); registers in kiln's own type.
struct VcpuState {
  x86::Registers regs;
  std::vector<std::byte> sregs;      // kvm_sregs: segments, CRs (CR8 too), EFER, APIC base, pending IRQ
  std::vector<std::byte> xsave;      // kvm_xsave: x87, SSE, AVX ...
  std::vector<std::pair<std::uint32_t, std::uint64_t>> xcrs;
  std::vector<std::pair<std::uint32_t, std::uint64_t>> msrs;
  std::vector<std::byte> lapic;      // kvm_lapic_state
  std::vector<std::byte> events;     // kvm_vcpu_events: pending exceptions, NMI, SIPI, shadow
  std::uint32_t mp_state = 0;        // KVM_MP_STATE_*
  std::vector<std::byte> debugregs;  // kvm_debugregs
  std::uint32_t tsc_khz = 0;
  bool operator==(const VcpuState&) const = default;
};

class Vcpu {
 public:
  Vcpu(UniqueFd fd, Mmap run, std::uint32_t id) : fd_(std::move(fd)), run_(std::move(run)), id_(id) {}

  Result<VcpuExit> run();
  // Thread-safe: the next or current KVM_RUN returns (with a signal to kick a running one).
  void set_immediate_exit(bool on);
  // The answer to the MsrWrite exit just returned: taken, or refused (the guest gets #GP).
  void complete_msr_write(bool ok);

  Result<x86::Registers> get_regs() const;
  Result<void> set_regs(const x86::Registers& r) const;
  Result<x86::SpecialRegisters> get_sregs() const;
  Result<void> set_sregs(const x86::SpecialRegisters& s) const;
  Result<x86::FpuState> get_fpu() const;
  Result<void> set_fpu(const x86::FpuState& f) const;
  Result<void> set_cpuid(const std::vector<x86::CpuidEntry>& table) const;
  // Sets `msrs` in order until KVM refuses one; returns how many it took.
  Result<std::size_t> set_msrs_until_refused(const std::vector<std::pair<std::uint32_t, std::uint64_t>>& msrs) const;
  // One MSR: its value, or an error if KVM has no such MSR for this vCPU.
  Result<std::uint64_t> get_msr(std::uint32_t index) const;
  // False when KVM refuses the value (or the MSR).
  Result<bool> set_msr(std::uint32_t index, std::uint64_t value) const;
  // Queues exception `vector` for delivery on the next entry.
  Result<void> inject_exception(std::uint8_t vector, std::optional<std::uint32_t> error_code = std::nullopt) const;
  Result<std::uint32_t> tsc_khz() const;
  Result<void> set_tsc_khz(std::uint32_t khz) const;

  // Each piece of the state, got and set on its own (the tests round-trip each) ...
  Result<std::vector<std::byte>> get_sregs_raw() const;
  Result<void> set_sregs_raw(std::span<const std::byte> sregs) const;
  Result<std::vector<std::byte>> get_xsave() const;
  Result<void> set_xsave(std::span<const std::byte> xsave) const;
  Result<std::vector<std::pair<std::uint32_t, std::uint64_t>>> get_xcrs() const;
  Result<void> set_xcrs(const std::vector<std::pair<std::uint32_t, std::uint64_t>>& xcrs) const;
  // The MSRs of `indices` that this vCPU has (the others are left out).
  Result<std::vector<std::pair<std::uint32_t, std::uint64_t>>> get_msrs(std::span<const std::uint32_t> indices) const;
  // All of them, or an error naming the first MSR KVM refused.
  Result<void> set_msrs(const std::vector<std::pair<std::uint32_t, std::uint64_t>>& msrs) const;
  Result<std::vector<std::byte>> get_lapic() const;
  Result<void> set_lapic(std::span<const std::byte> lapic) const;
  Result<std::vector<std::byte>> get_vcpu_events() const;
  Result<void> set_vcpu_events(std::span<const std::byte> events) const;
  Result<std::uint32_t> get_mp_state() const;
  Result<void> set_mp_state(std::uint32_t state) const;
  Result<std::vector<std::byte>> get_debugregs() const;
  Result<void> set_debugregs(std::span<const std::byte> debugregs) const;
  // ... and all together, in the order KVM needs to restore them (CPUID is the caller's, first).
  Result<VcpuState> save_state(std::span<const std::uint32_t> msr_indices) const;
  Result<void> restore_state(const VcpuState& state) const;
  // KVM's own counters for this vCPU (stats.h).
  [[nodiscard]] Result<Stats> stats() const { return Stats::open(fd_.get()); }

  // The VM's coalesced-write ring, in page `page` of this vCPU's mapping
  // (Capabilities::coalesced_ring_page); none if the mapping has no such page. Valid while this
  // Vcpu lives.
  [[nodiscard]] std::optional<CoalescedRing> coalesced_ring(std::uint32_t page) const;

  [[nodiscard]] std::uint32_t id() const { return id_; }

 private:
  UniqueFd fd_;
  Mmap run_;
  std::uint32_t id_;
};

}  // namespace kiln::kvm
