// The vCPU thread: KVM_RUN until the VM stops, answering every exit. An exit kiln cannot handle
// ends the VM with a report (exit reason, registers, instruction bytes), never a silent hang.
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

#include "arch/x86/emulation.h"
#include "arch/x86/msrs.h"
#include "arch/x86/syscall_fix.h"
#include "base/log.h"
#include "vmm/machine.h"

namespace kiln {

namespace {
template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
}  // namespace

void Machine::count_emulation(const std::string& name) {
  std::lock_guard lock(stats_mu_);
  ++emulated_[name];
}

std::string Machine::vcpu_report(const kvm::Vcpu& vcpu) const {
  auto regs = vcpu.get_regs();
  auto sregs = vcpu.get_sregs();
  if (!regs || !sregs) return "(registers unavailable)";
  const auto& r = *regs;
  const auto& s = *sregs;
  if (x86::is_reset_state(r, s))
    return fmt::format("vCPU {}: KVM reset the vCPU on this exit (as it does after a triple fault on AMD hosts), "
                       "so its registers and instruction at the fault are not available",
                       vcpu.id());
  std::array<std::byte, 15> code{};
  const std::size_t n = x86::fetch_instruction(mem_, s, r, code);
  return fmt::format(
      "vCPU {}: RIP={:#018x} RSP={:#018x} RFLAGS={:#x}\n"
      "  RAX={:#x} RBX={:#x} RCX={:#x} RDX={:#x} RSI={:#x} RDI={:#x} RBP={:#x}\n"
      "  CS={:#x} (L={} DB={} DPL={}) CR0={:#x} CR3={:#x} CR4={:#x} EFER={:#x}\n"
      "  bytes at RIP: {}",
      vcpu.id(), r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, s.cs.selector, s.cs.l,
      s.cs.db, s.cs.dpl, s.cr0, s.cr3, s.cr4, s.efer, n == 0 ? "(unreadable)" : x86::hex_bytes(std::span(code).first(n)));
}

bool Machine::handle_emulation_failure(kvm::Vcpu& vcpu, std::span<const std::byte> fetched_by_kvm) {
  auto regs = vcpu.get_regs();
  auto sregs = vcpu.get_sregs();
  auto fpu = vcpu.get_fpu();
  if (!regs || !sregs || !fpu) return false;
  const std::uint64_t rip = regs->rip;
  const auto failed = x86::emulate_failed_instruction(fetched_by_kvm, *regs, *sregs, *fpu, mem_);
  const auto& out = failed.outcome;
  using Kind = x86::EmulationOutcome::Kind;
  if (!out.handled()) {
    SPDLOG_ERROR("KVM could not emulate the instruction at RIP {:#x} ({}), and kiln cannot either: {} [{}]{}",
                 rip, out.detail, out.name, x86::hex_bytes(failed.used()),
                 fetched_by_kvm.empty() ? std::string()
                                        : fmt::format(" (KVM fetched [{}])", x86::hex_bytes(fetched_by_kvm)));
    return false;
  }
  if (!emulation_noted_.exchange(true))
    SPDLOG_INFO("KVM's emulator gave up on '{}' at {:#x}; kiln emulates such instructions itself", out.name, rip);
  count_emulation(out.name);
  SPDLOG_DEBUG("emulated {} at {:#x} (bytes {} KVM)", out.name, rip,
               failed.from_kvm ? "from" : "read from memory, none usable from");
  if (!vcpu.set_regs(*regs)) return false;
  if (out.fpu_changed && !vcpu.set_fpu(*fpu)) return false;
  if (out.kind == Kind::kInjectException) {
    std::optional<std::uint32_t> error_code;
    if (out.vector == x86::kVectorGeneralProtection) error_code = 0;
    if (auto r = vcpu.inject_exception(out.vector, error_code); !r) {
      SPDLOG_ERROR("injecting vector {}: {}", out.vector, r.error().message());
      return false;
    }
  }
  return true;
}

bool Machine::run_vcpu_once(std::size_t index) {
  if (stopping_) return false;
  kvm::Vcpu& vcpu = *vcpus_[index];
  auto crash = [&](std::string what) {
    const std::string report = vcpu_report(vcpu);
    SPDLOG_ERROR("{}\n{}", what, report);
    request_stop({VmEnd::kCrash, 0, std::move(what)});
  };
  {
    auto exit = vcpu.run();
    if (!exit) {
      request_stop({VmEnd::kVmmError, 0, exit.error().message()});
      return false;
    }
    exit_counts_[exit->index()].fetch_add(1, std::memory_order_relaxed);
    // The writes KVM held back come first: this exit may read what they changed.
    drain_coalesced();
    std::visit(
        Overloaded{
            [&](const kvm::IoIn& io) {
              for (std::size_t i = 0; i < io.data.size(); i += io.size) pio_.read(io.port, io.data.subspan(i, io.size));
            },
            [&](const kvm::IoOut& io) {
              for (std::size_t i = 0; i < io.data.size(); i += io.size) pio_.write(io.port, io.data.subspan(i, io.size));
            },
            [&](const kvm::MmioRead& m) { mmio_.read(m.addr, m.data); },
            [&](const kvm::MmioWrite& m) { mmio_.write(m.addr, m.data); },
            [&](const kvm::Hlt&) {},
            [&](const kvm::Debug&) {},
            [&](const kvm::Interrupted&) {
              vcpu.set_immediate_exit(false);
              // The mail the kick was for is read by drive_vcpu before the next KVM_RUN; a kick
              // whose message was handled already costs nothing.
            },
            [&](const kvm::Shutdown&) { request_stop({VmEnd::kTripleFault, 0, vcpu_report(vcpu)}); },
            [&](const kvm::SystemEvent& e) {
              switch (e.type) {
                case kvm::SystemEvent::kShutdown: request_stop({VmEnd::kPowerOff, 0, {}}); break;
                case kvm::SystemEvent::kReset: request_stop({VmEnd::kReset, 0, {}}); break;
                case kvm::SystemEvent::kCrash: request_stop({VmEnd::kPanic, 0, "KVM system event: crash"}); break;
                case kvm::SystemEvent::kOther: crash(fmt::format("unknown KVM system event {}", e.raw)); break;
              }
            },
            [&](const kvm::InternalError& e) {
              if (e.emulation && handle_emulation_failure(vcpu, e.instruction)) return;
              crash(fmt::format("KVM internal error, suberror {}{}", e.suberror,
                                e.emulation ? " (instruction emulation failed)" : ""));
            },
            [&](const kvm::FailEntry& f) {
              crash(fmt::format("KVM could not enter the guest: hardware entry failure reason {:#x}", f.reason));
            },
            [&](const kvm::MsrWrite& w) { vcpu.complete_msr_write(handle_msr_write(vcpu, w)); },
            [&](const kvm::Unknown& u) { crash(fmt::format("unhandled KVM exit reason {}", u.reason)); },
        },
        *exit);
  }
  if (profiling_ && profiling_->wanted[index].exchange(false, std::memory_order_relaxed)) take_sample(vcpu, index);
  if (index == 0 && syscall_fix_ && syscall_fix_->wanted.exchange(false, std::memory_order_relaxed))
    check_syscall_fix(vcpu);
  return !stopping_;
}

void Machine::drain_coalesced() {
  if (!coalesced_ || coalesced_->empty()) return;
  std::lock_guard lock(coalesced_mu_);
  const std::size_t n = coalesced_->drain([this](const kvm::CoalescedWrite& w) {
    if (w.pio) {
      pio_.write(w.addr, w.data);
    } else {
      mmio_.write(w.addr, w.data);
    }
  });
  coalesced_writes_.fetch_add(n, std::memory_order_relaxed);
  if (coalesced_->bad_entries() > 0 && !coalesced_bad_noted_) {
    coalesced_bad_noted_ = true;
    SPDLOG_WARN("KVM's coalesced-write ring held an entry kiln could not read ({} so far); those writes were dropped",
                coalesced_->bad_entries());
  }
}

bool Machine::handle_msr_write(kvm::Vcpu& vcpu, const kvm::MsrWrite& w) {
  // Only the TSC deadline is trapped, and only when pacing is on.
  if (w.index != x86::kMsrTscDeadline || !pacer_) return false;
  deadline_writes_.fetch_add(1, std::memory_order_relaxed);
  std::uint64_t value = w.value;
  // 0 disarms; without the guest's TSC the deadline goes in as written.
  if (value != 0) {
    if (auto now = vcpu.get_msr(x86::msr::kTsc)) value = pacer_->pace(w.value, *now);
  }
  if (value != w.value) deadlines_paced_.fetch_add(1, std::memory_order_relaxed);
  // Set from the host side, which the filter does not trap. Only a failed ioctl refuses the
  // guest's write (#GP); a value KVM drops (a deadline outside TSC-deadline mode) it drops for the
  // guest too.
  return vcpu.set_msr(x86::kMsrTscDeadline, value).has_value();
}

void Machine::check_syscall_fix(kvm::Vcpu& vcpu) {
  SyscallFix& f = *syscall_fix_;
  auto sregs = vcpu.get_sregs();
  const std::uint32_t which[] = {x86::msr::kLstar};
  auto msrs = vcpu.get_msrs(which);
  if (!sregs || !msrs || msrs->empty()) return;
  const std::uint64_t lstar = msrs->front().second;
  const auto st = x86::install_syscall_fix(mem_, *sregs, lstar);
  using Kind = x86::SyscallFixState::Kind;
  switch (st.kind) {
    case Kind::kNotYet:
    case Kind::kInPlace: break;
    case Kind::kInstalled:
      if (!f.installed.exchange(true)) {
        SPDLOG_INFO("syscall fix: the guest kernel's page-fault gate points at kiln's stub at {:#x} now (LSTAR {:#x}, "
                    "its own handler {:#x}): 64-bit system calls from its user space work on this host "
                    "(--no-syscall-fix leaves the kernel alone)",
                    st.stub, lstar, st.original);
      } else {
        SPDLOG_DEBUG("syscall fix: the kernel rewrote its page-fault gate (handler {:#x}); it points at the stub again",
                     st.original);
      }
      break;
    case Kind::kRefused:
      if (!f.given_up.exchange(true))
        SPDLOG_WARN("syscall fix: not installed: {}. The kernel runs on, but its user space cannot make 64-bit "
                    "system calls on this host",
                    st.why);
      break;
  }
}

void Machine::take_sample(kvm::Vcpu& vcpu, std::size_t index) {
  auto regs = vcpu.get_regs();
  auto sregs = vcpu.get_sregs();
  if (!regs || !sregs) return;
  const unsigned cpl = (sregs->cr0 & x86::kCr0Pe) == 0 ? 0u : (sregs->cs.selector & 3u);
  profiling_->samples.record(index, regs->rip, cpl);
}

void Machine::write_profile() {
  Profiling& p = *profiling_;
  profile::Profile::ReportInfo info{
      .seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - p.started).count(),
      .hz = p.hz,
      .slide_source = {},
      .top = p.top};
  if (p.symbols && !vcpus_.empty()) {
    // KASLR: the kernel's syscall entry is in MSR_LSTAR once it has set it up.
    const std::uint32_t which[] = {x86::msr::kLstar};
    const auto in_file = p.symbols->address_of("entry_SYSCALL_64");
    if (auto msrs = vcpus_[0]->get_msrs(which); msrs && !msrs->empty() && msrs->front().second != 0 && in_file) {
      p.symbols->set_slide(msrs->front().second - *in_file);
      info.slide_source = fmt::format("MSR_LSTAR {:#x} is entry_SYSCALL_64", msrs->front().second);
    }
  }
  std::string text = p.samples.report(p.symbols ? &*p.symbols : nullptr, info);
  if (!p.symbols_note.empty()) text += "note: " + p.symbols_note + "\n";
  text += counters_report(info.seconds);
  // The file was opened without O_TRUNC (see read_images); a pipe or a terminal has nothing to empty.
  struct stat st {};
  if (::fstat(p.out.get(), &st) == 0 && S_ISREG(st.st_mode) && ::ftruncate(p.out.get(), 0) != 0) {
    SPDLOG_WARN("--profile {}: emptying the file for the report: {}", p.out_path, std::strerror(errno));
    return;
  }
  for (std::size_t off = 0; off < text.size();) {
    const ssize_t n = ::write(p.out.get(), text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      SPDLOG_WARN("--profile {}: writing the report: {}", p.out_path, std::strerror(errno));
      return;
    }
    off += static_cast<std::size_t>(n);
  }
  SPDLOG_INFO("guest profile: {} samples written to {}", p.samples.samples(), p.out_path);
}

}  // namespace kiln
