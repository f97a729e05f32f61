#pragma once
// Timer pacing: a floor under how soon a vCPU's TSC-deadline timer may fire after the guest arms
// it. Where the host emulates guest kernel code (nested PVM), one periodic tick of a stock kernel
// costs milliseconds, and at HZ=250 the ticks take most of the CPU: the kernel's own work gets what
// is left. With a floor of F, a busy guest takes at most one timer interrupt per F of wall time
// (its tick code catches up on the jiffies it missed, as after any late interrupt), and a timer
// asked for sooner fires F late at most. It knows no KVM: the vCPU thread hands it the guest's
// WRMSR and its TSC.
#include <cstdint>

namespace kiln::x86 {

inline constexpr std::uint32_t kMsrTscDeadline = 0x6e0;

class TimerPacer {
 public:
  // `floor_us` of wall time, in TSC cycles at `tsc_khz`.
  TimerPacer(std::uint32_t floor_us, std::uint32_t tsc_khz)
      : floor_us_(floor_us), floor_tsc_(static_cast<std::uint64_t>(floor_us) * tsc_khz / 1000) {}

  // The deadline to arm when the guest writes `deadline` at guest TSC `now`: 0 (disarm) stays 0;
  // anything sooner than now + floor becomes now + floor.
  [[nodiscard]] std::uint64_t pace(std::uint64_t deadline, std::uint64_t now) const {
    if (deadline == 0 || now > UINT64_MAX - floor_tsc_) return deadline;
    const std::uint64_t earliest = now + floor_tsc_;
    return deadline < earliest ? earliest : deadline;
  }
  [[nodiscard]] std::uint64_t floor_tsc() const { return floor_tsc_; }
  [[nodiscard]] std::uint32_t floor_us() const { return floor_us_; }

 private:
  std::uint32_t floor_us_;
  std::uint64_t floor_tsc_;
};

}  // namespace kiln::x86
