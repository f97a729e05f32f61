#pragma once
// A device's interrupt line on the in-kernel irqchip (KVM_IRQ_LINE). The guest drives it (a device
// raising its line on the guest's request), so a failure is logged at a bounded rate.
#include <cstdint>

#include "base/log.h"
#include "devices/irq_line.h"
#include "kvm/kvm.h"

namespace kiln {

class KvmIrqLine : public IrqLine {
 public:
  KvmIrqLine(const kvm::Vm& vm, std::uint32_t irq) : vm_(vm), irq_(irq) {}
  void set_level(bool high) override {
    if (auto r = vm_.set_irq_line(irq_, high); !r && limit_.allow())
      SPDLOG_WARN("IRQ {}: {}{}", irq_, r.error().message(), limit_.suppressed_note());
  }

 private:
  const kvm::Vm& vm_;
  std::uint32_t irq_;
  RateLimit limit_;
};

}  // namespace kiln
