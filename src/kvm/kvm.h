#pragma once
// RAII handles for /dev/kvm, a VM and its vCPUs (the kvm-ioctls shape: Kvm -> Vm -> Vcpu).
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <variant>
#include <string>
#include <vector>

#include "arch/x86/cpuid.h"
#include "base/error.h"
#include "base/unique_fd.h"
#include "kvm/vcpu.h"
#include "memory/guest_memory.h"

namespace kiln::kvm {

// What kiln needs of KVM, checked once at start.
struct Capabilities {
  int max_vcpus = 1;
  bool tsc_khz = false;     // KVM_GET_TSC_KHZ
  // KVM emulates the LAPIC's TSC-deadline mode; kernels older than KVM commit 9be4ec35d668 (Dec.
  // 2024) leave its CPUID bit out of KVM_GET_SUPPORTED_CPUID all the same, for the VMM to set.
  bool tsc_deadline_timer = false;
  bool irqfd = false;
  bool ioeventfd = false;
  // The page of a vCPU's mapping that holds the coalesced-write ring (0: KVM has none), and
  // whether port writes can go there too (coalesced.h).
  std::uint32_t coalesced_ring_page = 0;
  bool coalesced_pio = false;
};

// Where a guest write signals an ioeventfd: `len` bytes (1, 2, 4 or 8; 0 for an MMIO write of
// any length) at a port or an MMIO address, and only when the value written is `datamatch` if set.
struct IoEventAddress {
  enum class Space { kPio, kMmio } space = Space::kMmio;
  std::uint64_t addr = 0;
  std::uint32_t len = 0;
  std::optional<std::uint64_t> datamatch;
};

// A pin of the in-kernel irqchip (chip 0: the master PIC, 1: the slave PIC, 2: the IOAPIC).
struct IrqchipPin {
  std::uint32_t chip = 0;
  std::uint32_t pin = 0;
};
// A message-signalled interrupt: the LAPIC address (destination in bits 12-19) and data (vector,
// delivery mode).
struct MsiMessage {
  std::uint64_t address = 0;
  std::uint32_t data = 0;
};
struct GsiRoute {
  std::uint32_t gsi = 0;
  std::variant<IrqchipPin, MsiMessage> to;
};

// The VM-wide state a snapshot needs beside the vCPUs': the in-kernel PICs and IOAPIC, the PIT and
// the kvmclock. The kvm_* structures are kept as bytes, as KVM gives them.
struct VmState {
  std::vector<std::byte> pic_master, pic_slave, ioapic;  // kvm_irqchip
  std::vector<std::byte> pit;                            // kvm_pit_state2
  std::uint64_t clock_ns = 0;
  std::uint32_t clock_flags = 0;
  bool operator==(const VmState&) const = default;
};

class Kvm {
 public:
  // Opens /dev/kvm (or `path`), checks the API version and every capability kiln relies on.
  static Result<Kvm> open(const std::string& path = "/dev/kvm");

  [[nodiscard]] const Capabilities& caps() const { return caps_; }
  Result<std::vector<x86::CpuidEntry>> supported_cpuid() const;
  // The MSRs KVM saves and restores for a vCPU (KVM_GET_MSR_INDEX_LIST): a vCPU state's MSR list.
  Result<std::vector<std::uint32_t>> msr_index_list() const;
  [[nodiscard]] int fd() const { return fd_.get(); }
  Result<class Vm> create_vm() const;
  [[nodiscard]] std::size_t vcpu_mmap_size() const { return vcpu_mmap_size_; }

 private:
  Kvm(UniqueFd fd, Capabilities caps, std::size_t mmap_size)
      : fd_(std::move(fd)), caps_(caps), vcpu_mmap_size_(mmap_size) {}
  UniqueFd fd_;
  Capabilities caps_;
  std::size_t vcpu_mmap_size_ = 0;
};

class Vm {
 public:
  // In-kernel PIC/IOAPIC/LAPIC and PIT, the TSS and identity-map pages below 4 GiB.
  Result<void> setup_platform();
  // Registers every region of guest memory with KVM (slot i for region i).
  Result<void> register_memory(const GuestMemory& mem);
  Result<Vcpu> create_vcpu(std::uint32_t id) const;
  // Drives an interrupt line of the in-kernel irqchip (ISA IRQs 0-15, IOAPIC pins).
  Result<void> set_irq_line(std::uint32_t irq, bool level) const;

  // A guest write to `at` signals `eventfd` in the kernel instead of exiting to kiln (virtqueue
  // notifications). Unregistering takes the same fd and address.
  Result<void> register_ioeventfd(int eventfd, const IoEventAddress& at) const;
  Result<void> unregister_ioeventfd(int eventfd, const IoEventAddress& at) const;
  // A write to `eventfd` raises GSI `gsi` in the kernel, without a vCPU exit or an ioctl.
  Result<void> register_irqfd(int eventfd, std::uint32_t gsi) const;
  Result<void> unregister_irqfd(int eventfd, std::uint32_t gsi) const;
  // Replaces KVM's whole GSI routing table; it must include the irqchip routes the platform needs
  // (default_gsi_routes()).
  Result<void> set_gsi_routing(std::span<const GsiRoute> routes) const;
  // What KVM routes by default on x86: GSIs 0-15 to the PICs and the IOAPIC, 16-23 to the IOAPIC.
  static std::vector<GsiRoute> default_gsi_routes();
  // Delivers one MSI now.
  Result<void> signal_msi(const MsiMessage& msi) const;
  // Guest writes to these MSRs exit to kiln (an MsrWrite exit) instead of being handled by KVM;
  // every other MSR stays KVM's. At most 16, and not the x2APIC's (KVM does not filter those).
  Result<void> trap_msr_writes(std::span<const std::uint32_t> indices) const;
  // Guest writes to ports [port, port+len) go to the coalesced-write ring instead of exiting to
  // kiln (coalesced.h; needs Capabilities::coalesced_pio). Reads still exit.
  Result<void> coalesce_pio(std::uint16_t port, std::uint32_t len) const;

  Result<VmState> save_state() const;
  Result<void> restore_state(const VmState& state) const;
  [[nodiscard]] int fd() const { return fd_.get(); }

 private:
  friend class Kvm;
  Vm(UniqueFd fd, std::size_t mmap_size) : fd_(std::move(fd)), vcpu_mmap_size_(mmap_size) {}
  UniqueFd fd_;
  std::size_t vcpu_mmap_size_;
};

}  // namespace kiln::kvm
