#pragma once
// A 16550A UART: the register model only. It knows no bus, KVM or thread; the VMM feeds it
// register accesses and host input, and it hands transmitted bytes to `tx` and drives `irq`.
#include <cstdint>
#include <deque>
#include <functional>
#include <span>

#include "devices/register_port_device.h"
#include "devices/irq_line.h"

namespace kiln {

class Serial16550 {
 public:
  using TxFn = std::function<void(std::span<const std::byte>)>;
  static constexpr std::size_t kInputLimit = 4096;  // bytes held for the guest before input is dropped

  Serial16550(IrqLine& irq, TxFn tx) : irq_(irq), tx_(std::move(tx)) {}

  std::uint8_t read(std::uint8_t reg);
  void write(std::uint8_t reg, std::uint8_t value);
  // Host input for the guest; returns how many bytes were taken (the rest would overflow).
  std::size_t enqueue_input(std::span<const std::byte> bytes);

  [[nodiscard]] std::uint64_t dropped_input() const { return dropped_; }
  struct Counters {
    std::uint64_t tx_bytes = 0;       // written by the guest
    std::uint64_t rx_bytes = 0;       // read by the guest
    std::uint64_t dropped_input = 0;  // host input lost to a full buffer
  };
  [[nodiscard]] Counters counters() const { return {tx_bytes_, rx_bytes_, dropped_}; }

 private:
  void update_irq();
  std::uint8_t iir() const;

  IrqLine& irq_;
  TxFn tx_;
  std::deque<std::uint8_t> rx_;
  std::uint8_t ier_ = 0, lcr_ = 0, mcr_ = 0x08, scr_ = 0, dll_ = 0x0c, dlm_ = 0, fcr_ = 0;
  bool thre_pending_ = false;
  bool irq_high_ = false;
  std::uint64_t dropped_ = 0;
  std::uint64_t tx_bytes_ = 0;
  std::uint64_t rx_bytes_ = 0;
};


using SerialPortDevice = RegisterPortDevice<Serial16550>;

}  // namespace kiln
