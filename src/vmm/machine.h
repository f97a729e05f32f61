#pragma once
// A running VM's lifecycle: start, pause, resume, stop and how it ended, with what it runs on (its
// memory, the vCPUs with their threads and mailboxes, the devices on the buses, the console served
// on the VMM thread's loop). VmBuilder makes one from a VmConfig.
#include <array>
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "arch/x86/timer_pacing.h"
#include "base/event_loop.h"
#include "base/log.h"
#include "boot/loader.h"
#include "arch/x86/layout.h"
#include "bus/bus.h"
#include "devices/i8042.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "kvm/kvm.h"
#include "memory/guest_memory.h"
#include "config/vm_config.h"
#include "profile/profile.h"
#include "vmm/console.h"
#include "vmm/device_manager.h"
#include "vmm/exit_status.h"
#include "vmm/vcpu_mailbox.h"
#include "vmm/virtio_devices.h"
#include "vmm/host.h"
#include "vmm/mmds_endpoint.h"

namespace kiln {

struct MachineIo {
  int console_in = 0;    // -1: no console input
  int console_out = 1;   // where --serial stdio writes
  int stop_signals = -1; // a signalfd: a signal on it stops the VM (kSignal); VmmBackend serves it
  // The VMM thread's event loop: the console's input and the stop signals are served there. Not
  // owned; it outlives the Machine.
  EventLoop* loop = nullptr;
  // The metadata service's data store, the API's (shared); none: an empty one of the VM's own.
  std::shared_ptr<const mmds::DataStore> mmds_store;
};

class VmBuilder;

class Machine {
 public:
  ~Machine();

  // Runs the VM until it ends; returns how. The same as start() then wait().
  VmExitStatus run();
  // Starts the VMM thread and the vCPUs; returns once they run.
  Result<void> start();
  // Waits for the VM to end (after start()); returns how.
  VmExitStatus wait();

  // Pause: every vCPU leaves KVM_RUN (signal + immediate_exit) and waits, and the VMM thread
  // stops feeding the devices; the guest's state is left as it was. Resume continues it. Both are
  // for one controlling thread (the API's).
  Result<void> pause();
  Result<void> resume();
  // Ctrl-Alt-Del pressed on the i8042 keyboard (the guest's keyboard driver decides what follows).
  Result<void> send_ctrl_alt_del();
  // Drive `id` gets a new image (the API's PATCH /drives/{id}).
  Result<void> replace_drive_image(const std::string& id, virtio::DiskImage image) {
    if (!virtio_) return plain_error("the VM has no drives");
    return virtio_->replace_drive_image(id, std::move(image));
  }
  // Counters since start: exits by reason, the emulation fallback's instructions, the devices'.
  [[nodiscard]] nlohmann::json metrics() const;
  // Thread-safe; the first request decides the status.
  void request_stop(VmExitStatus status);

  [[nodiscard]] const std::string& cmdline() const { return cmdline_; }
  [[nodiscard]] HostKind host() const { return host_; }

 private:
  // Built by VmBuilder, which fills in the devices and vCPUs.
  friend class VmBuilder;
  Machine(kvm::Kvm kvm, kvm::Vm vm, GuestMemory mem) : kvm_(std::move(kvm)), vm_(std::move(vm)), mem_(std::move(mem)) {}
  // One KVM_RUN of vCPU `index` and the exit it returns; false once the VM is ending.
  bool run_vcpu_once(std::size_t index);
  // The instruction-emulation fallback for KVM_INTERNAL_ERROR_EMULATION; false ends the VM.
  // `fetched_by_kvm`: the instruction bytes KVM reported with the failure, if any.
  bool handle_emulation_failure(kvm::Vcpu& vcpu, std::span<const std::byte> fetched_by_kvm);
  void on_console_event(ConsoleOutput::Event e);
  void on_console_input();
  void kick_vcpus();
  void kick_vcpu(std::size_t index);
  void kick_vcpu_locked(std::size_t index);  // kick_mu_ held
  void watch_console_input();
  std::string vcpu_report(const kvm::Vcpu& vcpu) const;
  void count_emulation(const std::string& name);

  kvm::Kvm kvm_;
  kvm::Vm vm_;
  GuestMemory mem_;
  HostKind host_ = HostKind::kHardware;
  std::string cmdline_;
  std::vector<std::unique_ptr<kvm::Vcpu>> vcpus_;
  // Each vCPU's stats file, opened once with it (empty on kernels before 5.14); only read after.
  std::vector<std::optional<kvm::Stats>> vcpu_stats_;
  std::vector<std::thread> vcpu_threads_;
  // Live vCPU threads' ids, for kicking them out of KVM_RUN; a thread clears its own on the way
  // out, under kick_mu_, so no signal goes to a thread that is gone.
  std::mutex kick_mu_;
  std::vector<std::optional<pthread_t>> vcpu_tids_;

  Bus pio_{"port I/O"};
  Bus mmio_{"MMIO"};
  DeviceManager devices_{pio_, mmio_,
                         {.mmio_start = x86::kDeviceMmioStart,
                          .mmio_end = x86::kDeviceMmioEnd,
                          .gsi_start = x86::kDeviceGsiStart,
                          .gsi_end = x86::kDeviceGsiEnd}};
  std::unique_ptr<IrqLine> com1_irq_;
  std::unique_ptr<ConsoleOutput> console_;
  std::unique_ptr<Serial16550> serial_;
  std::shared_ptr<SerialPortDevice> serial_dev_;
  std::unique_ptr<IrqLine> kbd_irq_;
  std::shared_ptr<I8042Device> i8042_dev_;
  std::unique_ptr<I8042> i8042_;
  std::unique_ptr<CmosRtc> rtc_;
  // The metadata service: its HTTP server outlives the interfaces that lead to it.
  std::unique_ptr<MmdsEndpoint> mmds_;
  // After the device manager and memory, which it refers to: destroyed before them.
  std::unique_ptr<VirtioDevices> virtio_;
  UniqueFd serial_file_;
  int console_in_ = -1;
  EscapeFilter escape_;
  EventLoop* loop_ = nullptr;  // the VMM thread's (MachineIo::loop)
  // Takes the console input off the loop (the VM has ended).
  void stop_watching();

  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stopping_{false};

  // Pause, resume, stop and calls on a vCPU's thread go through its mailbox, handled between
  // KVM_RUNs (drive_vcpu), each vCPU kicked out of KVM_RUN after the message is posted.
  std::vector<std::unique_ptr<VcpuMailbox>> mailboxes_;
  // Posts `kind` to every vCPU, kicks them, and waits up to `limit` for every answer; false if one
  // did not come in time (an ended vCPU answers at once, as not ok).
  bool post_to_vcpus(VcpuMailbox::Kind kind, std::chrono::milliseconds limit, std::size_t& answered_ok);
  std::optional<VmExitStatus> status_;
  // An ending the guest's console announced: taken at its deadline unless a device (ACPI,
  // pvpanic) reports the ending first, with more to say.
  struct ConsoleEnding {
    std::chrono::steady_clock::time_point deadline;
    VmExitStatus status;
  };
  std::optional<ConsoleEnding> console_ending_;
  bool panic_seen_ = false;

  // Exits by kind (the index of kvm::VcpuExit's alternatives).
  std::array<std::atomic<std::uint64_t>, std::variant_size_v<kvm::VcpuExit>> exit_counts_{};
  mutable std::mutex stats_mu_;
  std::map<std::string, std::uint64_t> emulated_;
  std::atomic<bool> emulation_noted_{false};

  // --profile: a loop timer asks every vCPU for a sample (a flag and a kick); each vCPU takes its
  // RIP and CPL after its next exit (vcpu_runner.cpp), and the report is written when the VM ends.
  struct Profiling {
    profile::Profile samples;
    std::unique_ptr<std::atomic<bool>[]> wanted;
    unsigned hz = 0;
    unsigned top = 40;
    UniqueFd out;
    std::string out_path;
    std::optional<profile::SymbolTable> symbols;
    std::string symbols_note;
    std::optional<EventLoop::TimerId> timer;
    std::chrono::steady_clock::time_point started;
  };
  std::unique_ptr<Profiling> profiling_;
  void take_sample(kvm::Vcpu& vcpu, std::size_t index);
  void write_profile();
  // KVM's own counters (kvm/stats.h), summed over the vCPUs; empty where the kernel has none.
  [[nodiscard]] std::vector<kvm::Counter> kvm_counters() const;
  // The profile's closing sections: KVM's counters and kiln's exits, each with its rate.
  [[nodiscard]] std::string counters_report(double seconds) const;

  // The syscall redirect (nested-PVM hosts; arch/x86/syscall_fix.h): a loop timer asks vCPU 0 (a
  // flag and a kick) to look at the running kernel after its next exit and install the stub,
  // every 100 ms until it is in place and every 2 s after that (a kernel may rewrite its #PF gate).
  // A kernel without what the stub needs gets one line, and no more looks.
  struct SyscallFix {
    std::atomic<bool> wanted{false};
    std::atomic<bool> installed{false};
    std::atomic<bool> given_up{false};
    unsigned ticks = 0;  // the loop's thread only
    std::optional<EventLoop::TimerId> timer;
  };
  std::unique_ptr<SyscallFix> syscall_fix_;
  void check_syscall_fix(kvm::Vcpu& vcpu);

  // Timer pacing (arch/x86/timer_pacing.h): the guest's TSC-deadline writes exit to kiln, which
  // arms the timer no sooner than the floor. Set when --timer-floor is on (by default on nested-PVM
  // hosts only).
  std::optional<x86::TimerPacer> pacer_;
  std::atomic<std::uint64_t> deadline_writes_{0};  // the guest's TSC-deadline writes
  std::atomic<std::uint64_t> deadlines_paced_{0};  // of them, moved later by the floor
  // A trapped WRMSR; false refuses it (the guest gets #GP).
  bool handle_msr_write(kvm::Vcpu& vcpu, const kvm::MsrWrite& w);

  // KVM's coalesced-write ring (kvm/coalesced.h), in vCPU 0's mapping, when VmBuilder set it up:
  // the guest's writes to COM1's data register wait there instead of exiting one by one. They are
  // carried out, in order, before any exit kiln handles (so a register read sees every write
  // before it, and the console's bytes come out before a power-off), when the VM ends, and every
  // 100 ms from the loop (for a guest that prints and then runs without exiting).
  std::mutex coalesced_mu_;
  std::optional<kvm::CoalescedRing> coalesced_;
  bool coalesced_bad_noted_ = false;  // under coalesced_mu_
  std::atomic<std::uint64_t> coalesced_writes_{0};
  std::optional<EventLoop::TimerId> coalesced_timer_;
  void drain_coalesced();
  // The loop's timers that call into this Machine (profile samples, the syscall fix's looks, the
  // console's drain): cancelled when the VM ends, and by the destructor for a start() that failed
  // half way, so that none fires on a Machine that is gone.
  void cancel_loop_timers();
};

}  // namespace kiln
