#pragma once
// RAII handles for /dev/kvm, a VM and its vCPUs (the kvm-ioctls shape: Kvm -> Vm -> Vcpu).
#include <cstdint>
#include <memory>
#include <optional>
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
  bool irqfd = false;
  bool ioeventfd = false;
};

class Kvm {
 public:
  // Opens /dev/kvm (or `path`), checks the API version and every capability kiln relies on.
  static Result<Kvm> open(const std::string& path = "/dev/kvm");

  [[nodiscard]] const Capabilities& caps() const { return caps_; }
  Result<std::vector<x86::CpuidEntry>> supported_cpuid() const;
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
  [[nodiscard]] int fd() const { return fd_.get(); }

 private:
  friend class Kvm;
  Vm(UniqueFd fd, std::size_t mmap_size) : fd_(std::move(fd)), vcpu_mmap_size_(mmap_size) {}
  UniqueFd fd_;
  std::size_t vcpu_mmap_size_;
};

}  // namespace kiln::kvm
