#pragma once
// An interrupt line a device drives; the VMM connects it to the in-kernel irqchip.
namespace kiln {

class IrqLine {
 public:
  virtual ~IrqLine() = default;
  virtual void set_level(bool high) = 0;
};

}  // namespace kiln
