#pragma once
// One vCPU: its fd, its kvm_run mapping, and the exits KVM_RUN hands back as a typed variant.
#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include "arch/x86/cpu_state.h"
#include "arch/x86/cpuid.h"
#include "base/error.h"
#include "base/mmap.h"
#include "base/unique_fd.h"

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
struct Unknown { std::uint32_t reason; };

using VcpuExit = std::variant<IoIn, IoOut, MmioRead, MmioWrite, Hlt, Shutdown, SystemEvent, InternalError,
                              FailEntry, Interrupted, Debug, Unknown>;

class Vcpu {
 public:
  Vcpu(UniqueFd fd, Mmap run, std::uint32_t id) : fd_(std::move(fd)), run_(std::move(run)), id_(id) {}

  Result<VcpuExit> run();
  // Thread-safe: the next or current KVM_RUN returns (with a signal to kick a running one).
  void set_immediate_exit(bool on);

  Result<x86::Registers> get_regs() const;
  Result<void> set_regs(const x86::Registers& r) const;
  Result<x86::SpecialRegisters> get_sregs() const;
  Result<void> set_sregs(const x86::SpecialRegisters& s) const;
  Result<x86::FpuState> get_fpu() const;
  Result<void> set_fpu(const x86::FpuState& f) const;
  Result<void> set_cpuid(const std::vector<x86::CpuidEntry>& table) const;
  // Sets the MSRs a booting kernel expects (and AMD's HWCR on AMD CPUs); returns how many KVM
  // accepted and how many were asked for.
  Result<std::pair<std::size_t, std::size_t>> set_boot_msrs(bool amd) const;
  // One MSR: its value, or an error if KVM has no such MSR for this vCPU.
  Result<std::uint64_t> get_msr(std::uint32_t index) const;
  // False when KVM refuses the value (or the MSR).
  Result<bool> set_msr(std::uint32_t index, std::uint64_t value) const;
  // LINT0 as ExtINT (the PIC), LINT1 as NMI, as firmware leaves them.
  Result<void> setup_lapic_lint() const;
  // Queues exception `vector` for delivery on the next entry.
  Result<void> inject_exception(std::uint8_t vector, std::optional<std::uint32_t> error_code = std::nullopt) const;
  Result<std::uint32_t> tsc_khz() const;

  [[nodiscard]] std::uint32_t id() const { return id_; }

 private:
  UniqueFd fd_;
  Mmap run_;
  std::uint32_t id_;
};

}  // namespace kiln::kvm
