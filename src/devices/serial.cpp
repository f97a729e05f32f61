#include "devices/serial.h"

namespace kiln {

namespace {
// Registers (offset from the base port).
constexpr std::uint8_t kData = 0, kIer = 1, kIir = 2, kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6, kScr = 7;
constexpr std::uint8_t kIerRda = 0x01, kIerThre = 0x02;
constexpr std::uint8_t kIirNone = 0x01, kIirThre = 0x02, kIirRda = 0x04, kIirFifo = 0xc0;
constexpr std::uint8_t kLcrDlab = 0x80;
constexpr std::uint8_t kLsrDataReady = 0x01, kLsrThrEmpty = 0x20, kLsrIdle = 0x40;
constexpr std::uint8_t kMcrLoop = 0x10;
constexpr std::uint8_t kMsrCts = 0x10, kMsrDsr = 0x20, kMsrDcd = 0x80;
}  // namespace

std::uint8_t Serial16550::iir() const {
  const std::uint8_t fifo = (fcr_ & 1) != 0 ? kIirFifo : 0;
  if ((ier_ & kIerRda) != 0 && !rx_.empty()) return fifo | kIirRda;
  if ((ier_ & kIerThre) != 0 && thre_pending_) return fifo | kIirThre;
  return fifo | kIirNone;
}

void Serial16550::update_irq() {
  const bool high = (iir() & kIirNone) == 0;
  if (high != irq_high_) {
    irq_high_ = high;
    irq_.set_level(high);
  }
}

std::uint8_t Serial16550::read(std::uint8_t reg) {
  std::uint8_t v = 0;
  switch (reg & 7) {
    case kData:
      if ((lcr_ & kLcrDlab) != 0) return dll_;
      if (!rx_.empty()) {
        v = rx_.front();
        rx_.pop_front();
        ++rx_bytes_;
      }
      break;
    case kIer:
      return (lcr_ & kLcrDlab) != 0 ? dlm_ : ier_;
    case kIir:
      v = iir();
      // Reading IIR acknowledges a THR-empty interrupt.
      if ((v & 0x0f) == kIirThre) thre_pending_ = false;
      break;
    case kLcr: return lcr_;
    case kMcr: return mcr_;
    case kLsr:
      return static_cast<std::uint8_t>(kLsrThrEmpty | kLsrIdle | (rx_.empty() ? 0 : kLsrDataReady));
    case kMsr:
      if ((mcr_ & kMcrLoop) != 0) {
        // Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD (the 8250 driver's probe checks this).
        return static_cast<std::uint8_t>(((mcr_ & 0x02) << 3) | ((mcr_ & 0x01) << 5) | ((mcr_ & 0x04) << 4) |
                                         ((mcr_ & 0x08) << 4));
      }
      return kMsrDcd | kMsrDsr | kMsrCts;
    case kScr: return scr_;
  }
  update_irq();
  return v;
}

void Serial16550::write(std::uint8_t reg, std::uint8_t value) {
  switch (reg & 7) {
    case kData:
      if ((lcr_ & kLcrDlab) != 0) {
        dll_ = value;
        return;
      }
      if ((mcr_ & kMcrLoop) != 0) {
        if (rx_.size() < kInputLimit) rx_.push_back(value);
      } else {
        const std::byte b{value};
        ++tx_bytes_;
        tx_(std::span(&b, 1));
      }
      // The byte leaves at once, so THR is empty again.
      thre_pending_ = true;
      break;
    case kIer:
      if ((lcr_ & kLcrDlab) != 0) {
        dlm_ = value;
        return;
      }
      // Enabling the THR-empty interrupt while THR is empty raises it at once.
      if ((value & kIerThre) != 0 && (ier_ & kIerThre) == 0) thre_pending_ = true;
      ier_ = value & 0x0f;
      break;
    case kIir:
      fcr_ = value;
      if ((value & 0x02) != 0) rx_.clear();  // clear receive FIFO
      break;
    case kLcr: lcr_ = value; return;
    case kMcr: mcr_ = value & 0x1f; break;
    case kScr: scr_ = value; return;
    default: return;  // LSR and MSR are read-only
  }
  update_irq();
}

std::size_t Serial16550::enqueue_input(std::span<const std::byte> bytes) {
  std::size_t taken = 0;
  for (auto b : bytes) {
    if (rx_.size() >= kInputLimit) {
      dropped_ += bytes.size() - taken;
      break;
    }
    rx_.push_back(static_cast<std::uint8_t>(b));
    ++taken;
  }
  update_irq();
  return taken;
}

}  // namespace kiln
