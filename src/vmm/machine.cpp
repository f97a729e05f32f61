#include "vmm/machine.h"

#include <fcntl.h>
#include <sys/signalfd.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <fmt/ranges.h>

#include <future>

#include "acpi/tables.h"
#include "arch/x86/boot_cpu.h"
#include "arch/x86/cpu_template.h"
#include "arch/x86/cpuid.h"
#include "arch/x86/layout.h"
#include "base/log.h"
#include "boot/cmdline.h"
#include "devices/legacy_ports.h"
#include "devices/power.h"
#include "vmm/firmware.h"

namespace kiln {

namespace {

// The signal that kicks a vCPU thread out of KVM_RUN; its handler does nothing.
int kick_signal() { return SIGRTMIN + 1; }

void install_kick_handler() {
  struct sigaction sa{};
  sa.sa_handler = [](int) {};
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
  ::sigaction(kick_signal(), &sa, nullptr);
}

constexpr const char* kExitNames[] = {"io_in",     "io_out",          "mmio_read", "mmio_write",
                                      "hlt",       "shutdown",        "system_event", "internal_error",
                                      "fail_entry", "interrupted",    "debug",     "unknown"};
static_assert(std::size(kExitNames) == std::variant_size_v<kvm::VcpuExit>);

class KvmIrqLine : public IrqLine {
 public:
  KvmIrqLine(const kvm::Vm& vm, std::uint32_t irq) : vm_(vm), irq_(irq) {}
  void set_level(bool high) override {
    // The guest drives this (a device raising its line on the guest's request): bounded.
    if (auto r = vm_.set_irq_line(irq_, high); !r && limit_.allow())
      SPDLOG_WARN("IRQ {}: {}{}", irq_, r.error().message(), limit_.suppressed_note());
  }

 private:
  const kvm::Vm& vm_;
  std::uint32_t irq_;
  RateLimit limit_;
};

}  // namespace

// Everything that can be wrong with the user's input shows up here, before KVM is touched: the
// config, and the images read and checked.
Result<Machine::GuestImages> Machine::read_images(const VmConfig& config) {
  KILN_TRY(validate(config));
  GuestImages images;
  images.kernel = KILN_TRY(boot::read_image_file(config.boot_source.kernel_image_path, "--kernel"));
  if (auto fmt = boot::detect_kernel_format(images.kernel); !fmt)
    return std::unexpected(with_context(fmt.error(), "--kernel " + config.boot_source.kernel_image_path));
  if (config.boot_source.initrd_path)
    images.initrd = KILN_TRY(boot::read_image_file(*config.boot_source.initrd_path, "--initrd"));
  const std::uint64_t mem_bytes = config.machine_config.mem_size_mib << 20;
  if (!images.initrd.empty() && images.initrd.size() >= mem_bytes)
    return plain_error("--initrd: the initrd ({} MiB) is larger than guest memory ({} MiB); raise --memory",
                       (images.initrd.size() + (1 << 20) - 1) >> 20, config.machine_config.mem_size_mib);
  return images;
}

Result<void> Machine::load_guest(const VmConfig& config, const GuestImages& images, std::vector<std::string>& added,
                                 boot::LoadedKernel& loaded) {
  const std::string user = config.boot_source.boot_args.value_or(kDefaultBootArgs);
  cmdline_ = config.kiln.host_kernel_args ? boot::merge_cmdline(user, host_kernel_args(host_), &added) : user;
  if (const std::string dev = devices_.cmdline_args(); !dev.empty()) cmdline_ += " " + dev;
  const auto rsdp = KILN_TRY(write_firmware_tables(
      mem_, {.vcpu_count = config.machine_config.vcpu_count, .dsdt_devices = devices_.dsdt_terms()}));
  loaded = KILN_TRY(boot::load_linux(mem_, images.kernel, images.initrd, cmdline_, rsdp));
  return {};
}

Result<PreparedVm> PreparedVm::create(std::uint64_t mem_size_mib) {
  auto kvm = KILN_TRY(kvm::Kvm::open());
  auto vm = KILN_TRY(kvm.create_vm());
  auto mem = KILN_TRY(GuestMemory::create(x86_ram_layout(mem_size_mib << 20)));
  auto registered = std::async(std::launch::async, [&] { return vm.register_memory(mem); });  // as in create()
  auto platform = vm.setup_platform();
  KILN_TRY(registered.get());
  KILN_TRY(std::move(platform));
  return PreparedVm{std::move(kvm), std::move(vm), std::move(mem), mem_size_mib};
}

Result<std::unique_ptr<Machine>> Machine::create(const VmConfig& config, MachineIo io,
                                                 std::optional<PreparedVm> prepared) {
  if (prepared && prepared->mem_size_mib != config.machine_config.mem_size_mib) prepared.reset();
  if (prepared) SPDLOG_DEBUG("using the VM prepared ahead ({} MiB registered)", prepared->mem_size_mib);
  const HostKind host = detect_host();
  const GuestImages images = KILN_TRY(read_images(config));
  auto mem = prepared ? std::move(prepared->mem)
                      : KILN_TRY(GuestMemory::create(x86_ram_layout(config.machine_config.mem_size_mib << 20)));

  auto kvm = prepared ? std::move(prepared->kvm) : KILN_TRY(kvm::Kvm::open());
  if (config.machine_config.vcpu_count > static_cast<std::uint32_t>(kvm.caps().max_vcpus))
    return plain_error("--cpus {}: this host's KVM allows at most {} vCPUs", config.machine_config.vcpu_count,
                       kvm.caps().max_vcpus);
  auto vm = prepared ? std::move(prepared->vm) : KILN_TRY(kvm.create_vm());
  std::unique_ptr<Machine> m(new Machine(std::move(kvm), std::move(vm), std::move(mem)));
  m->host_ = host;
  m->loop_ = io.loop;
  // Registering memory costs a fixed host-side wait (a memslot synchronization: 7-15 ms on
  // nested-PVM hosts) under a different lock than the irqchip, PIT and vCPUs, so it overlaps them.
  // (Declared after m: on an early return its destructor waits for it before m goes.)
  std::future<Result<void>> registered;  // none when the prepared VM has it all
  if (!prepared) {
    registered = std::async(std::launch::async, [&m] { return m->vm_.register_memory(m->mem_); });
    KILN_TRY(m->vm_.setup_platform());
  }
  // The devices first, then what describes them: the firmware tables and the command line.
  KILN_TRY(m->setup_devices(config, io));
  std::vector<std::string> added;
  boot::LoadedKernel loaded{};
  KILN_TRY(m->load_guest(config, images, added, loaded));
  if (host != HostKind::kHardware) {
    SPDLOG_INFO("host KVM: {}: guest kernel code is emulated here; kiln recovers from the instructions the "
                "host cannot emulate and hides PV features that need hypercalls", host_name(host));
    if (!added.empty())
      SPDLOG_INFO("adding kernel arguments for this host: {} (give the same key in --cmdline to override, or "
                  "--no-host-args to add none)", fmt::join(added, " "));
  }
  SPDLOG_DEBUG("kernel: {}, entry {:#x}", loaded.describe(), loaded.entry);
  KILN_TRY(m->setup_vcpus(config, loaded));
  if (registered.valid()) KILN_TRY(registered.get());
  return m;
}

Machine::~Machine() {
  if (!stopping_) request_stop({VmEnd::kVmmError, 0, "machine destroyed"});
  kick_vcpus();
  for (auto& t : vcpu_threads_)
    if (t.joinable()) t.join();
  stop_watching();
}

void Machine::stop_watching() {
  if (loop_ == nullptr) return;
  // Either may not be watched (no input, EOF, paused, or never started): nothing to undo then.
  if (console_in_ >= 0) (void)loop_->remove(console_in_);
  if (stop_signals_ >= 0) (void)loop_->remove(stop_signals_);
}

Result<void> Machine::setup_devices(const VmConfig& config, MachineIo io) {
  stop_signals_ = io.stop_signals;
  // The console: what COM1 transmits goes to stdout, a file, or nowhere.
  int out_fd = -1;
  switch (config.kiln.serial.mode) {
    case SerialConfig::Mode::kStdio: out_fd = io.console_out; console_in_ = io.console_in; break;
    case SerialConfig::Mode::kFile:
      serial_file_.reset(::open(config.kiln.serial.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
      if (!serial_file_) return errno_error("--serial file:{}: cannot open for writing", config.kiln.serial.path);
      out_fd = serial_file_.get();
      break;
    case SerialConfig::Mode::kNone: break;
  }
  console_ = std::make_unique<ConsoleOutput>(out_fd, [this](ConsoleOutput::Event e) { on_console_event(e); });
  com1_irq_ = std::make_unique<KvmIrqLine>(vm_, x86::kCom1Irq);
  serial_ = std::make_unique<Serial16550>(*com1_irq_, [this](std::span<const std::byte> b) { console_->write(b); });
  serial_dev_ = std::make_shared<SerialPortDevice>(*serial_);
  KILN_TRY(devices_.add_fixed_pio("COM1", serial_dev_, x86::kCom1Port, 8, x86::kCom1Irq,
                                  acpi::com_port_device("COM1", 1, x86::kCom1Port, x86::kCom1Irq)));

  kbd_irq_ = std::make_unique<KvmIrqLine>(vm_, x86::kI8042Irq);
  i8042_ = std::make_unique<I8042>([this] { request_stop({VmEnd::kReset, 0, "reset through the i8042"}); },
                                   kbd_irq_.get());
  i8042_dev_ = std::make_shared<I8042Device>(*i8042_);
  KILN_TRY(devices_.add_fixed_pio("i8042", i8042_dev_, x86::kI8042Port, 5, x86::kI8042Irq,
                                  acpi::i8042_device(x86::kI8042Port, x86::kI8042Port + 4, x86::kI8042Irq)));
  rtc_ = std::make_unique<CmosRtc>();
  KILN_TRY(devices_.add_fixed_pio("rtc", std::make_shared<CmosRtcDevice>(*rtc_), x86::kRtcPort, 2, x86::kRtcIrq,
                                  acpi::rtc_device(x86::kRtcPort, x86::kRtcIrq)));
  KILN_TRY(devices_.add_fixed_pio("debug-exit", std::make_shared<DebugExitDevice>([this](std::uint8_t v) {
                                    request_stop({VmEnd::kDebugExit, v, {}});
                                  }),
                                  x86::kDebugExitPort, 1));
  KILN_TRY(devices_.add_fixed_pio(
      "acpi-power",
      std::make_shared<AcpiPowerDevice>(
          AcpiPowerDevice::Callbacks{
              .power_off = [this] { request_stop({VmEnd::kPowerOff, 0, "ACPI soft-off"}); },
              .reset = [this] { request_stop({VmEnd::kReset, 0, "reset through the ACPI reset register"}); },
              .unsupported_sleep =
                  [](std::uint8_t type) {
                    static RateLimit limit;  // the guest can ask in a loop
                    if (limit.allow())
                      SPDLOG_WARN("the guest asked for ACPI sleep type {}; kiln offers only soft-off (S5){}", type,
                                  limit.suppressed_note());
                  }}),
      x86::kAcpiPowerPort, AcpiPowerDevice::kSize));
  KILN_TRY(devices_.add_fixed_pio(
      "pvpanic",
      std::make_shared<PvPanicDevice>(PvPanicDevice::Callbacks{
          .panicked = [this] { request_stop({VmEnd::kPanic, 0, "reported through pvpanic"}); },
          .crash_loaded = [] { SPDLOG_INFO("the guest is starting its crash kernel (pvpanic)"); }}),
      x86::kPvPanicPort, 1, std::nullopt, acpi::pvpanic_device(x86::kPvPanicPort)));
  if (config.kiln.boot_timer) {
    KILN_TRY(devices_.add_fixed_pio("boot-timer", std::make_shared<BootTimerDevice>([] {
                                      const auto now = std::chrono::steady_clock::now();
                                      const double ms =
                                          std::chrono::duration<double, std::milli>(now - process_start_time()).count();
                                      const auto mono =
                                          std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch());
                                      SPDLOG_INFO("boot-timer: guest marked boot {:.3f} ms after kiln started "
                                                  "(monotonic {} ns)",
                                                  ms, mono.count());
                                    }),
                                    x86::kBootTimerPort, 1));
  }
  return {};
}

Result<void> Machine::setup_vcpus(const VmConfig& config, const boot::LoadedKernel& kernel) {
  const auto quirks = host_quirks(host_);
  const auto supported = KILN_TRY(kvm_.supported_cpuid());
  const auto boot = KILN_TRY(x86::setup_boot_cpu(mem_, kernel.mode, kernel.entry, kernel.boot_info_addr));
  const std::uint32_t n = config.machine_config.vcpu_count;
  std::optional<std::uint32_t> tsc_khz;
  // The CPU templates give one table for every vCPU, reported on once; the per-vCPU fix-ups
  // (APIC id, topology) go on top of it below.
  std::vector<x86::CpuTemplate> templates{
      x86::builtin_cpu_template(config.machine_config.cpu_template)};
  if (config.cpu_config) templates.push_back(config.cpu_config->parsed);
  const auto forced = host_ == HostKind::kNestedPvm ? x86::native_feature_leaves() : std::vector<x86::CpuidEntry>{};
  auto templated = supported;
  for (const auto& t : templates)
    for (const auto& line : x86::apply_cpuid_template(templated, t, {&supported, forced.empty() ? nullptr : &forced}))
      SPDLOG_WARN("CPU template '{}': not applied: {}", t.name, line);
  for (std::uint32_t id = 0; id < n; ++id) {
    auto vcpu = std::make_unique<kvm::Vcpu>(KILN_TRY(vm_.create_vcpu(id)));
    if (id == 0 && kvm_.caps().tsc_khz) {
      if (auto k = vcpu->tsc_khz()) tsc_khz = *k;
    }
    auto table = templated;
    x86::apply_cpuid_fixups(table, {.vcpu_id = id,
                                    .vcpu_count = n,
                                    .hide_cx16 = quirks.hide_cx16,
                                    .hide_pv_hypercalls = quirks.hide_pv_hypercalls,
                                    .tsc_khz = tsc_khz});
    KILN_TRY(vcpu->set_cpuid(table));
    const auto boot_msrs = x86::boot_msrs(x86::cpu_vendor(supported) == x86::CpuVendor::kAmd);
    if (const std::size_t set = KILN_TRY(vcpu->set_msrs_until_refused(boot_msrs)); set != boot_msrs.size())
      SPDLOG_DEBUG("vCPU {}: KVM took {} of {} boot MSRs", id, set, boot_msrs.size());
    for (const auto& t : templates) {
      for (const auto& m : t.msrs) {
        std::string why;
        if (auto cur = vcpu->get_msr(m.addr); !cur) {
          why = "KVM on this host has no such MSR";
        } else if (const std::uint64_t v = m.bits.apply(*cur); !vcpu->set_msr(m.addr, v).value_or(false)) {
          why = fmt::format("KVM refused the value {:#x}", v);
        }
        if (!why.empty() && id == 0) SPDLOG_WARN("CPU template '{}': not applied: MSR {:#x}: {}", t.name, m.addr, why);
      }
    }
    auto lapic = KILN_TRY(vcpu->get_lapic());
    x86::set_firmware_lint(lapic);  // the register page is the start of kvm_lapic_state
    KILN_TRY(vcpu->set_lapic(lapic));
    if (id == 0) {
      KILN_TRY(vcpu->set_sregs(boot.sregs));
      KILN_TRY(vcpu->set_regs(boot.regs));
      KILN_TRY(vcpu->set_fpu(x86::FpuState{}));
    }
    vcpus_.push_back(std::move(vcpu));
  }
  vcpu_tids_.assign(n, std::nullopt);
  for (std::uint32_t i = 0; i < n; ++i) mailboxes_.push_back(std::make_unique<VcpuMailbox>());
  return {};
}

void Machine::request_stop(VmExitStatus status) {
  {
    std::lock_guard lock(mu_);
    if (status_) return;
    // After the kernel announced a panic, the reboot or triple fault that follows is that panic.
    if (panic_seen_ && (status.end == VmEnd::kReset || status.end == VmEnd::kTripleFault)) {
      status = {VmEnd::kPanic, 0,
                "seen on the console, then " + (status.end == VmEnd::kReset ? status.detail : std::string("a triple fault"))};
    }
    status_ = std::move(status);
    stopping_ = true;
  }
  cv_.notify_all();
  // Paused vCPUs wake for this; running ones see stopping_ when kicked out of KVM_RUN.
  for (auto& box : mailboxes_) (void)box->post(VcpuMailbox::Kind::kStop);
  kick_vcpus();
}

void Machine::kick_vcpus() {
  std::lock_guard lock(kick_mu_);
  for (std::size_t i = 0; i < vcpus_.size(); ++i) {
    vcpus_[i]->set_immediate_exit(true);
    if (i < vcpu_tids_.size() && vcpu_tids_[i]) ::pthread_kill(*vcpu_tids_[i], kick_signal());
  }
}

void Machine::on_console_event(ConsoleOutput::Event e) {
  switch (e) {
    case ConsoleOutput::Event::kPanicStart: {
      std::lock_guard lock(mu_);
      panic_seen_ = true;
      // The kernel prints its trace, tells pvpanic, then halts or reboots; give it a moment.
      console_ending_ = {std::chrono::steady_clock::now() + std::chrono::seconds(3),
                         {VmEnd::kPanic, 0, "seen on the console"}};
      cv_.notify_all();
      break;
    }
    case ConsoleOutput::Event::kPanicEnd: request_stop({VmEnd::kPanic, 0, "seen on the console"}); break;
    case ConsoleOutput::Event::kPowerOff: {
      // The kernel prints "Power down" just before it writes the ACPI sleep register; a kernel
      // without ACPI halts instead, and this ending is taken.
      std::lock_guard lock(mu_);
      if (!console_ending_)
        console_ending_ = {std::chrono::steady_clock::now() + std::chrono::seconds(2),
                           {VmEnd::kPowerOff, 0, "the kernel's console said 'Power down'"}};
      cv_.notify_all();
      break;
    }
  }
}

void Machine::on_console_input() {
  std::byte buf[256];
  const ssize_t n = ::read(console_in_, buf, sizeof(buf));
  if (n <= 0) {
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    (void)loop_->remove(console_in_);  // EOF: no more input, the guest goes on
    return;
  }
  auto r = escape_.feed(std::span(buf, static_cast<std::size_t>(n)));
  if (!r.forward.empty())
    serial_dev_->with_core([&](Serial16550& uart) {
      return uart.enqueue_input(std::as_bytes(std::span(r.forward.data(), r.forward.size())));
    });
  if (r.quit) request_stop({VmEnd::kUserQuit, 0, {}});
}

VmExitStatus Machine::run() {
  if (auto r = start(); !r) return {VmEnd::kVmmError, 0, r.error().message()};
  return wait();
}

void Machine::watch_console_input() {
  if (console_in_ < 0) return;
  // Not every input can be watched (a regular file cannot): then the guest gets no input.
  if (auto r = loop_->add(console_in_, EPOLLIN, [this](std::uint32_t) { on_console_input(); }); !r)
    SPDLOG_DEBUG("console input not watched: {}", r.error().message());
}

Result<void> Machine::start() {
  install_kick_handler();
  if (loop_ == nullptr) return plain_error("the machine has no event loop to serve its console on");
  watch_console_input();
  if (stop_signals_ >= 0) {
    KILN_TRY(loop_->add(stop_signals_, EPOLLIN, [this](std::uint32_t) {
      signalfd_siginfo si{};
      if (::read(stop_signals_, &si, sizeof(si)) == static_cast<ssize_t>(sizeof(si)))
        request_stop({VmEnd::kSignal, 0, ::strsignal(static_cast<int>(si.ssi_signo))});
    }));
  }

  for (std::size_t i = 0; i < vcpus_.size(); ++i) {
    vcpu_threads_.emplace_back([this, i] {
      {
        std::lock_guard lock(kick_mu_);
        vcpu_tids_[i] = ::pthread_self();
      }
      drive_vcpu(*mailboxes_[i], [this, i] { return run_vcpu_once(i); });
      std::lock_guard lock(kick_mu_);
      vcpu_tids_[i].reset();
    });
  }
  return {};
}

bool Machine::post_to_vcpus(VcpuMailbox::Kind kind, std::chrono::milliseconds limit, std::size_t& answered_ok) {
  std::vector<std::future<VcpuMailbox::Reply>> answers;
  for (auto& box : mailboxes_) answers.push_back(box->post(kind));
  kick_vcpus();
  const auto deadline = std::chrono::steady_clock::now() + limit;
  answered_ok = 0;
  bool all = true;
  for (auto& a : answers) {
    if (a.wait_until(deadline) != std::future_status::ready) {
      all = false;
      continue;
    }
    if (a.get().ok) ++answered_ok;
  }
  return all;
}

Result<void> Machine::pause() {
  // A vCPU leaves KVM_RUN within microseconds of its kick; one in the middle of a long exit (the
  // emulation fallback) takes longer, but not seconds.
  std::size_t paused = 0;
  if (!post_to_vcpus(VcpuMailbox::Kind::kPause, std::chrono::seconds(10), paused)) {
    std::size_t resumed = 0;
    (void)post_to_vcpus(VcpuMailbox::Kind::kResume, std::chrono::seconds(10), resumed);
    return plain_error("{} of {} vCPUs did not stop within 10 s; the VM goes on", vcpus_.size() - paused,
                       vcpus_.size());
  }
  // Device work stops too: no console input reaches the UART while paused.
  if (console_in_ >= 0) (void)loop_->remove(console_in_);
  return {};
}

Result<void> Machine::resume() {
  watch_console_input();
  std::size_t resumed = 0;
  if (!post_to_vcpus(VcpuMailbox::Kind::kResume, std::chrono::seconds(10), resumed))
    return plain_error("{} of {} vCPUs did not answer the resume within 10 s", vcpus_.size() - resumed, vcpus_.size());
  return {};
}

Result<void> Machine::send_ctrl_alt_del() {
  if (!i8042_dev_->with_core([](I8042& kbd) { return kbd.press_ctrl_alt_del(); }))
    return plain_error("the guest has not read the keys sent before; try again later");
  return {};
}

nlohmann::json Machine::metrics() const {
  nlohmann::json exits = nlohmann::json::object();
  for (std::size_t i = 0; i < exit_counts_.size(); ++i) exits[kExitNames[i]] = exit_counts_[i].load();
  nlohmann::json emulated = nlohmann::json::object();
  {
    std::lock_guard stats(stats_mu_);
    for (const auto& [name, count] : emulated_) emulated[name] = count;
  }
  const auto serial = serial_dev_->with_core([](Serial16550& uart) { return uart.counters(); });
  const nlohmann::json serial_json = {{"tx_bytes", serial.tx_bytes},
                                      {"rx_bytes", serial.rx_bytes},
                                      {"dropped_input", serial.dropped_input}};
  return {{"vcpu_exits", exits},
          {"emulation_fallback", emulated},
          {"port_io", {{"unclaimed_accesses", pio_.unclaimed_accesses()}}},
          {"mmio", {{"unclaimed_accesses", mmio_.unclaimed_accesses()}}},
          {"serial", serial_json}};
}

VmExitStatus Machine::wait() {
  std::unique_lock lock(mu_);
  while (!status_) {
    if (console_ending_) {
      if (cv_.wait_until(lock, console_ending_->deadline) == std::cv_status::timeout && !status_) {
        // As any other ending: paused vCPUs must hear of it too.
        const VmExitStatus announced = console_ending_->status;
        lock.unlock();
        request_stop(announced);
        lock.lock();
      }
    } else {
      cv_.wait(lock);
    }
  }
  VmExitStatus result = *status_;
  lock.unlock();

  kick_vcpus();
  for (auto& t : vcpu_threads_) t.join();
  vcpu_threads_.clear();
  stop_watching();

  {
    std::lock_guard stats(stats_mu_);
    if (!emulated_.empty()) {
      std::string list;
      for (const auto& [name, count] : emulated_) list += fmt::format("{}{} x{}", list.empty() ? "" : ", ", name, count);
      SPDLOG_INFO("instructions emulated for the host: {}", list);
    }
  }
  std::string exits;
  for (std::size_t i = 0; i < exit_counts_.size(); ++i)
    if (auto n = exit_counts_[i].load(); n > 0) exits += fmt::format("{}{} {}", exits.empty() ? "" : ", ", kExitNames[i], n);
  SPDLOG_DEBUG("exits: {}", exits);
  if (pio_.unclaimed_accesses() > 0) SPDLOG_DEBUG("unclaimed port I/O accesses: {}", pio_.unclaimed_accesses());
  return result;
}

}  // namespace kiln
