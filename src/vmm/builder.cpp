#include "vmm/builder.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <fmt/ranges.h>

#include <future>
#include <ranges>

#include "acpi/tables.h"
#include "arch/x86/boot_cpu.h"
#include "arch/x86/cpu_template.h"
#include "arch/x86/cpuid.h"
#include "arch/x86/layout.h"
#include "base/log.h"
#include "boot/cmdline.h"
#include "boot/unpack.h"
#include "devices/legacy_ports.h"
#include "devices/power.h"
#include "virtio/net/tap.h"
#include "virtio/net/user_net.h"
#include "vmm/firmware.h"
#include "vmm/kvm_irq_line.h"

namespace kiln {



// Everything that can be wrong with the user's input shows up here, before KVM is touched: the
// config, and the images read and checked.
Result<VmBuilder::GuestImages> VmBuilder::read_images(const VmConfig& config, HostKind host,
                                                     std::shared_ptr<const mmds::DataStore> mmds_store) {
  KILN_CHECK(validate(config));
  GuestImages images;
  KILN_ASSIGN(images.kernel, boot::read_image_file(config.boot_source.kernel_image_path, "--kernel"));
  auto fmt = boot::detect_kernel_format(images.kernel);
  if (!fmt) return std::unexpected(with_context(fmt.error(), "--kernel " + config.boot_source.kernel_image_path));
  const UnpackKernel unpack = config.kiln.unpack_kernel;
  // --unpack-kernel: kiln undoes the kernel's and the initrd's compression itself (auto: on
  // nested-PVM hosts, where the guest's decompressors are emulated).
  const bool unpack_here = unpack == UnpackKernel::kOn || (unpack == UnpackKernel::kAuto && host == HostKind::kNestedPvm);
  // A broken bzImage is the user's one error, whichever way it would boot.
  if (*fmt == boot::KernelFormat::kBzImage) KILN_CHECK(boot::check_bzimage(images.kernel));
  if (*fmt == boot::KernelFormat::kBzImage && unpack_here) {
    auto u = boot::unpack_bzimage(images.kernel);
    if (u) {
      images.unpacked_note = u->describe();  // before the move: it gives the vmlinux's size
      images.unpacked = std::move(u->vmlinux);
    } else if (unpack == UnpackKernel::kOn) {
      return std::unexpected(with_context(u.error(), "--unpack-kernel on: " + config.boot_source.kernel_image_path));
    } else {
      SPDLOG_INFO("kiln cannot unpack this bzImage ({}); its own decompressor runs in the guest",
                  u.error().message());
    }
  }
  if (config.boot_source.initrd_path) {
    KILN_ASSIGN(images.initrd, boot::read_image_file(*config.boot_source.initrd_path, "--initrd"));
  }
  const std::uint64_t mem_bytes = config.machine_config.mem_size_mib << 20;
  if (!images.initrd.empty() && images.initrd.size() >= mem_bytes)
    return plain_error("--initrd: the initrd ({} MiB) is larger than guest memory ({} MiB); raise --memory",
                       (images.initrd.size() + (1 << 20) - 1) >> 20, config.machine_config.mem_size_mib);
  // A compressed initramfs, undone here as the kernel is: only where guest memory holds the result
  // twice over with 64 MiB to spare (the guest's kernel keeps the initrd until it has unpacked it
  // into its page cache, so plain cpio needs that much more room than a compressed one).
  if (!images.initrd.empty() && mem_bytes > (std::uint64_t{64} << 20) && unpack_here) {
    const std::size_t limit = static_cast<std::size_t>((mem_bytes - (std::uint64_t{64} << 20)) / 2);
    auto u = boot::unpack_initrd(images.initrd, limit);
    if (!u) {
      SPDLOG_INFO("kiln leaves the initrd as it is ({}); the guest's kernel unpacks it", u.error().message());
    } else if (*u) {
      images.initrd_note = (*u)->describe();
      images.initrd = std::move((*u)->bytes);
    }
  }
  if (config.kiln.profile) {
    const ProfileConfig& p = *config.kiln.profile;
    if (!p.symbols.empty()) {
      auto t = profile::SymbolTable::load(p.symbols);
      if (!t) return std::unexpected(with_context(t.error(), "--profile-symbols"));
      images.profile_symbols = std::move(*t);
    } else if (auto t = profile::SymbolTable::from_elf(images.kernel, config.boot_source.kernel_image_path)) {
      images.profile_symbols = std::move(*t);
    } else {
      images.profile_symbols_note = "the kernel is not an ELF with symbols; give --profile-symbols System.map";
    }
  }
  for (const auto& d : config.drives) {
    KILN_ASSIGN(auto img, virtio::DiskImage::open(d.path_on_host, d.is_read_only,
                                                  fmt::format("drive {}: path", d.drive_id)));
    images.disks.push_back(std::move(img));
  }
  for (const auto& n : config.network_interfaces) {
    const std::string where = fmt::format("network interface {}", n.iface_id);
    if (n.host_dev_name) {
      auto tap = virtio::TapBackend::open(*n.host_dev_name);
      if (!tap) return std::unexpected(with_context(tap.error(), where));
      images.nets.push_back(std::move(*tap));
    } else {
      std::vector<virtio::HostForward> fwds;
      for (const auto& f : n.hostfwd) fwds.push_back(virtio::parse_hostfwd(f).value());  // checked with the config
      auto user = virtio::UserNetBackend::create(fwds);
      if (!user) return std::unexpected(with_context(user.error(), where));
      images.nets.push_back(std::move(*user));
    }
  }
  if (config.vsock) {
    auto v = virtio::VsockDevice::create({.guest_cid = config.vsock->guest_cid, .uds_path = config.vsock->uds_path});
    if (!v) return std::unexpected(v.error());
    images.vsock = std::move(*v);
  }
  if (config.mmds) {
    if (!mmds_store) mmds_store = std::make_shared<mmds::DataStore>();
    KILN_ASSIGN(images.mmds, MmdsEndpoint::start(std::move(mmds_store), *config.mmds));
    for (std::size_t i = 0; i < config.network_interfaces.size(); ++i) {
      const auto& ids = config.mmds->network_interfaces;
      if (std::find(ids.begin(), ids.end(), config.network_interfaces[i].iface_id) == ids.end()) continue;
      KILN_ASSIGN(images.nets[i], images.mmds->attach(std::move(images.nets[i])));
    }
  }
  if (config.kiln.profile) {
    // Opened last of the user's files, and not truncated until the report is written: a start that
    // fails on any other input leaves an existing report as it was.
    const std::string& path = config.kiln.profile->path;
    images.profile_out.reset(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    if (!images.profile_out) return errno_error("--profile {}: cannot open for writing", path);
  }
  return images;
}


Result<void> VmBuilder::load_guest(Machine& m, const VmConfig& config, const GuestImages& images, std::vector<std::string>& added,
                                 boot::LoadedKernel& loaded) {
  const std::string user = config.boot_source.boot_args.value_or(kDefaultBootArgs);
  m.cmdline_ = config.kiln.host_kernel_args ? boot::merge_cmdline(user, host_kernel_args(m.host_), &added) : user;
  // The root drive, as Firecracker adds it (a root= the user gave wins).
  for (const auto& d : config.drives) {
    if (!d.is_root_device) continue;
    std::vector<std::string> root_args;
    for (const auto& a : std::views::split(root_drive_args(d), ' ')) root_args.emplace_back(a.begin(), a.end());
    m.cmdline_ = boot::merge_cmdline(m.cmdline_, root_args, nullptr);
  }
  if (const std::string dev = m.devices_.cmdline_args(); !dev.empty()) m.cmdline_ += " " + dev;
  auto dsdt = m.devices_.dsdt_terms();
  KILN_ASSIGN(auto pci_dsdt, m.virtio_->firmware_dsdt());
  dsdt.insert(dsdt.end(), pci_dsdt.begin(), pci_dsdt.end());
  KILN_ASSIGN(const auto rsdp, write_firmware_tables(m.mem_, {.vcpu_count = config.machine_config.vcpu_count,
                                                              .dsdt_devices = std::move(dsdt),
                                                              .mcfg = m.virtio_->mcfg()}));
  KILN_ASSIGN(loaded, boot::load_linux(m.mem_, images.kernel, images.initrd, m.cmdline_, rsdp, images.unpacked));
  if (!images.unpacked.empty())
    SPDLOG_INFO("unpacked the bzImage's kernel on the host ({}): no decompressor runs in the guest "
                "(--unpack-kernel off to run it)",
                images.unpacked_note);
  if (!images.initrd_note.empty())
    SPDLOG_INFO("unpacked the initrd on the host ({}): the guest's kernel reads plain cpio (--unpack-kernel off "
                "to leave it compressed)",
                images.initrd_note);
  return {};
}


Result<PreparedVm> PreparedVm::create(std::uint64_t mem_size_mib) {
  KILN_ASSIGN(auto kvm, kvm::Kvm::open());
  KILN_ASSIGN(auto vm, kvm.create_vm());
  KILN_ASSIGN(auto mem, GuestMemory::create(x86_ram_layout(mem_size_mib << 20)));
  auto registered = std::async(std::launch::async, [&] { return vm.register_memory(mem); });  // as in create()
  auto platform = vm.setup_platform();
  KILN_CHECK(registered.get());
  KILN_CHECK(std::move(platform));
  return PreparedVm{std::move(kvm), std::move(vm), std::move(mem), mem_size_mib};
}


Result<std::unique_ptr<Machine>> VmBuilder::build(const VmConfig& config, MachineIo io,
                                                 std::optional<PreparedVm> prepared) {
  if (prepared && prepared->mem_size_mib != config.machine_config.mem_size_mib) prepared.reset();
  if (prepared) SPDLOG_DEBUG("using the VM prepared ahead ({} MiB registered)", prepared->mem_size_mib);
  const HostKind host = detect_host();
  KILN_ASSIGN(GuestImages images, read_images(config, host, io.mmds_store));
  std::optional<GuestMemory> mem;
  if (prepared) {
    mem = std::move(prepared->mem);
  } else {
    KILN_ASSIGN(mem, GuestMemory::create(x86_ram_layout(config.machine_config.mem_size_mib << 20)));
  }

  std::optional<kvm::Kvm> kvm;
  if (prepared) {
    kvm = std::move(prepared->kvm);
  } else {
    KILN_ASSIGN(kvm, kvm::Kvm::open());
  }
  if (config.machine_config.vcpu_count > static_cast<std::uint32_t>(kvm->caps().max_vcpus))
    return plain_error("--cpus {}: this host's KVM allows at most {} vCPUs", config.machine_config.vcpu_count,
                       kvm->caps().max_vcpus);
  std::optional<kvm::Vm> vm;
  if (prepared) {
    vm = std::move(prepared->vm);
  } else {
    KILN_ASSIGN(vm, kvm->create_vm());
  }
  std::unique_ptr<Machine> m(new Machine(std::move(*kvm), std::move(*vm), std::move(*mem)));
  m->host_ = host;
  m->loop_ = io.loop;
  // Registering memory costs a fixed host-side wait (a memslot synchronization: 7-15 ms on
  // nested-PVM hosts) under a different lock than the irqchip, PIT and vCPUs, so it overlaps them.
  // (Declared after m: on an early return its destructor waits for it before m goes.)
  std::future<Result<void>> registered;  // none when the prepared VM has it all
  if (!prepared) {
    registered = std::async(std::launch::async, [&m] { return m->vm_.register_memory(m->mem_); });
    KILN_CHECK(m->vm_.setup_platform());
  }
  // The devices first, then what describes them: the firmware tables and the command line.
  KILN_CHECK(setup_devices(*m, config, io, images));
  std::vector<std::string> added;
  boot::LoadedKernel loaded{};
  KILN_CHECK(load_guest(*m, config, images, added, loaded));
  if (host != HostKind::kHardware) {
    SPDLOG_INFO("host KVM: {}: guest kernel code is emulated here; kiln recovers from the instructions the "
                "host cannot emulate and hides PV features that need hypercalls", host_name(host));
    if (!added.empty())
      SPDLOG_INFO("adding kernel arguments for this host: {} (give the same key in --cmdline to override, or "
                  "--no-host-args to add none)", fmt::join(added, " "));
  }
  SPDLOG_DEBUG("kernel: {}, entry {:#x}", loaded.describe(), loaded.entry);
  KILN_CHECK(setup_vcpus(*m, config, loaded));
  if (config.kiln.profile) {
    const std::size_t n = config.machine_config.vcpu_count;
    m->profiling_ = std::unique_ptr<Machine::Profiling>(new Machine::Profiling{
        .samples = profile::Profile(n),
        .wanted = std::make_unique<std::atomic<bool>[]>(n),
        .hz = config.kiln.profile->hz,
        .top = config.kiln.profile->top,
        .out = std::move(images.profile_out),
        .out_path = config.kiln.profile->path,
        .symbols = std::move(images.profile_symbols),
        .symbols_note = images.profile_symbols_note,
        .timer = std::nullopt,
        .started = {}});
  }
  if (config.kiln.syscall_fix && m->host_ == HostKind::kNestedPvm)
    m->syscall_fix_ = std::make_unique<Machine::SyscallFix>();
  KILN_CHECK(setup_timer_floor(*m, config.kiln.timer_floor));
  coalesce_console(*m);
  if (registered.valid()) KILN_CHECK(registered.get());
  return m;
}

void VmBuilder::coalesce_console(Machine& m) {
  // Each byte the guest prints is a write to COM1's data register; from a ring, kiln takes them
  // without an exit each (Machine::drain_coalesced says when). Without the ring it is one exit per
  // byte, as before: slower, never wrong.
  const auto& caps = m.kvm_.caps();
  std::optional<kvm::CoalescedRing> ring;
  if (caps.coalesced_pio && !m.vcpus_.empty()) ring = m.vcpus_[0]->coalesced_ring(caps.coalesced_ring_page);
  if (!ring) {
    SPDLOG_DEBUG("console: one exit per byte (this KVM has no coalesced port writes)");
    return;
  }
  if (auto r = m.vm_.coalesce_pio(x86::kCom1Port, 1); !r) {
    SPDLOG_DEBUG("console: one exit per byte: {}", r.error().message());
    return;
  }
  m.coalesced_.emplace(*ring);
}


Result<void> VmBuilder::setup_timer_floor(Machine& m, const TimerFloor& floor) {
  std::uint32_t us = 0;
  switch (floor.mode) {
    case TimerFloor::Mode::kOff: return {};
    case TimerFloor::Mode::kAuto:
      if (m.host_ != HostKind::kNestedPvm) return {};
      us = TimerFloor::kDefaultUs;
      break;
    case TimerFloor::Mode::kOn: us = floor.us; break;
  }
  // Not having it makes a guest slower on nested-PVM hosts, never wrong: say so and go on, unless
  // the user asked for it by number.
  auto refuse = [&](const std::string& why) -> Result<void> {
    if (floor.mode == TimerFloor::Mode::kOn) return plain_error("--timer-floor {}: {}", us, why);
    SPDLOG_WARN("timer floor: not set ({}); the guest's timer is KVM's alone", why);
    return {};
  };
  if (m.vcpus_.empty()) return refuse("no vCPU");
  const auto khz = m.vcpus_[0]->tsc_khz();
  if (!khz) return refuse(khz.error().message());
  const std::uint32_t trapped[] = {x86::kMsrTscDeadline};
  if (auto trap = m.vm_.trap_msr_writes(trapped); !trap) return refuse(trap.error().message());
  m.pacer_.emplace(us, *khz);
  SPDLOG_INFO("timer floor: a vCPU's TSC-deadline timer fires no sooner than {} us after the guest arms it "
              "(--timer-floor off for KVM's own timing)", us);
  return {};
}

Result<void> VmBuilder::setup_devices(Machine& m, const VmConfig& config, MachineIo io, GuestImages& images) {
  // The console: what COM1 transmits goes to stdout, a file, or nowhere.
  int out_fd = -1;
  switch (config.kiln.serial.mode) {
    case SerialConfig::Mode::kStdio: out_fd = io.console_out; m.console_in_ = io.console_in; break;
    case SerialConfig::Mode::kFile:
      m.serial_file_.reset(::open(config.kiln.serial.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
      if (!m.serial_file_) return errno_error("--serial file:{}: cannot open for writing", config.kiln.serial.path);
      out_fd = m.serial_file_.get();
      break;
    case SerialConfig::Mode::kNone: break;
  }
  m.console_ = std::make_unique<ConsoleOutput>(out_fd, [&m](ConsoleOutput::Event e) { m.on_console_event(e); });
  m.com1_irq_ = std::make_unique<KvmIrqLine>(m.vm_, x86::kCom1Irq);
  m.serial_ = std::make_unique<Serial16550>(*m.com1_irq_, [&m](std::span<const std::byte> b) { m.console_->write(b); });
  m.serial_dev_ = std::make_shared<SerialPortDevice>(*m.serial_);
  KILN_ASSIGN(acpi::Bytes com1_dsdt, acpi::com_port_device("COM1", 1, x86::kCom1Port, x86::kCom1Irq));
  KILN_CHECK(m.devices_.add_fixed_pio("COM1", m.serial_dev_, x86::kCom1Port, 8, x86::kCom1Irq, std::move(com1_dsdt)));

  m.kbd_irq_ = std::make_unique<KvmIrqLine>(m.vm_, x86::kI8042Irq);
  m.i8042_ = std::make_unique<I8042>([&m] { m.request_stop({VmEnd::kReset, 0, "reset through the i8042"}); },
                                   m.kbd_irq_.get());
  m.i8042_dev_ = std::make_shared<I8042Device>(*m.i8042_);
  KILN_ASSIGN(acpi::Bytes i8042_dsdt, acpi::i8042_device(x86::kI8042Port, x86::kI8042Port + 4, x86::kI8042Irq));
  KILN_CHECK(m.devices_.add_fixed_pio("i8042", m.i8042_dev_, x86::kI8042Port, 5, x86::kI8042Irq, std::move(i8042_dsdt)));
  m.rtc_ = std::make_unique<CmosRtc>();
  KILN_ASSIGN(acpi::Bytes rtc_dsdt, acpi::rtc_device(x86::kRtcPort, x86::kRtcIrq));
  KILN_CHECK(m.devices_.add_fixed_pio("rtc", std::make_shared<CmosRtcDevice>(*m.rtc_), x86::kRtcPort, 2, x86::kRtcIrq,
                                      std::move(rtc_dsdt)));
  KILN_CHECK(m.devices_.add_fixed_pio("debug-exit", std::make_shared<DebugExitDevice>([&m](std::uint8_t v) {
                                    m.request_stop({VmEnd::kDebugExit, v, {}});
                                  }),
                                  x86::kDebugExitPort, 1));
  KILN_CHECK(m.devices_.add_fixed_pio(
      "acpi-power",
      std::make_shared<AcpiPowerDevice>(
          AcpiPowerDevice::Callbacks{
              .power_off = [&m] { m.request_stop({VmEnd::kPowerOff, 0, "ACPI soft-off"}); },
              .reset = [&m] { m.request_stop({VmEnd::kReset, 0, "reset through the ACPI reset register"}); },
              .unsupported_sleep =
                  [](std::uint8_t type) {
                    static RateLimit limit;  // the guest can ask in a loop
                    if (limit.allow())
                      SPDLOG_WARN("the guest asked for ACPI sleep type {}; kiln offers only soft-off (S5){}", type,
                                  limit.suppressed_note());
                  }}),
      x86::kAcpiPowerPort, AcpiPowerDevice::kSize));
  KILN_ASSIGN(acpi::Bytes pvpanic_dsdt, acpi::pvpanic_device(x86::kPvPanicPort));
  KILN_CHECK(m.devices_.add_fixed_pio(
      "pvpanic",
      std::make_shared<PvPanicDevice>(PvPanicDevice::Callbacks{
          .panicked = [&m] { m.request_stop({VmEnd::kPanic, 0, "reported through pvpanic"}); },
          .crash_loaded = [] { SPDLOG_INFO("the guest is starting its crash kernel (pvpanic)"); }}),
      x86::kPvPanicPort, 1, std::nullopt, std::move(pvpanic_dsdt)));
  if (config.kiln.boot_timer) {
    KILN_CHECK(m.devices_.add_fixed_pio("boot-timer", std::make_shared<BootTimerDevice>([] {
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
  // Virtio devices: the root drive first, so that it is vda; then the other drives in order.
  m.virtio_ = std::make_unique<VirtioDevices>(m.vm_, m.kvm_.caps(), m.mem_, m.devices_, io.loop,
                                              config.machine_config.transport);
  for (int pass = 0; pass < 2; ++pass)
    for (std::size_t i = 0; i < config.drives.size(); ++i)
      if (config.drives[i].is_root_device == (pass == 0))
        KILN_CHECK(m.virtio_->add_block(config.drives[i], std::move(images.disks[i])));
  m.mmds_ = std::move(images.mmds);
  for (std::size_t i = 0; i < config.network_interfaces.size(); ++i)
    KILN_CHECK(m.virtio_->add_net(config.network_interfaces[i], std::move(images.nets[i])));
  if (config.entropy) KILN_CHECK(m.virtio_->add_rng());
  if (images.vsock) KILN_CHECK(m.virtio_->add_vsock(std::move(images.vsock)));
  // With a disk, a network interface or vsock, the VMM loop spins briefly before it sleeps (see
  // PollWindow): a guest waiting on one request at a time (queue depth 1) gets its next one served,
  // and a frame arriving just after the last one is taken, without a thread wake-up. 32 us, QEMU's
  // default for its iothreads (poll-max-ns).
  if (!config.drives.empty() || !config.network_interfaces.empty() || config.vsock)
    io.loop->set_max_poll(std::chrono::microseconds(32));
  return {};
}


Result<void> VmBuilder::setup_vcpus(Machine& m, const VmConfig& config, const boot::LoadedKernel& kernel) {
  const auto quirks = host_quirks(m.host_);
  KILN_ASSIGN(const auto supported, m.kvm_.supported_cpuid());
  KILN_ASSIGN(const auto boot, x86::setup_boot_cpu(m.mem_, kernel.mode, kernel.entry, kernel.boot_info_addr));
  const std::uint32_t n = config.machine_config.vcpu_count;
  std::optional<std::uint32_t> tsc_khz;
  // The CPU templates give one table for every vCPU, reported on once; the per-vCPU fix-ups
  // (APIC id, topology) go on top of it below.
  std::vector<x86::CpuTemplate> templates{
      x86::builtin_cpu_template(config.machine_config.cpu_template)};
  if (config.cpu_config) templates.push_back(config.cpu_config->parsed);
  const auto forced = m.host_ == HostKind::kNestedPvm ? x86::native_feature_leaves() : std::vector<x86::CpuidEntry>{};
  auto templated = supported;
  for (const auto& t : templates)
    for (const auto& line : x86::apply_cpuid_template(templated, t, {&supported, forced.empty() ? nullptr : &forced}))
      SPDLOG_WARN("CPU template '{}': not applied: {}", t.name, line);
  for (std::uint32_t id = 0; id < n; ++id) {
    KILN_ASSIGN(kvm::Vcpu created, m.vm_.create_vcpu(id));
    auto vcpu = std::make_unique<kvm::Vcpu>(std::move(created));
    if (id == 0 && m.kvm_.caps().tsc_khz) {
      if (auto k = vcpu->tsc_khz()) tsc_khz = *k;
    }
    auto table = templated;
    x86::apply_cpuid_fixups(table, {.vcpu_id = id,
                                    .vcpu_count = n,
                                    .hide_cx16 = quirks.hide_cx16,
                                    .hide_pv_hypercalls = quirks.hide_pv_hypercalls,
                                    .tsc_deadline = m.kvm_.caps().tsc_deadline_timer,
                                    .tsc_khz = tsc_khz});
    KILN_CHECK(vcpu->set_cpuid(table));
    const auto boot_msrs = x86::boot_msrs(x86::cpu_vendor(supported) == x86::CpuVendor::kAmd);
    KILN_ASSIGN(const std::size_t set, vcpu->set_msrs_until_refused(boot_msrs));
    if (set != boot_msrs.size())
      SPDLOG_DEBUG("vCPU {}: KVM took {} of {} boot MSRs", id, set, boot_msrs.size());
    for (const auto& t : templates) {
      for (const auto& mod : t.msrs) {
        std::string why;
        if (auto cur = vcpu->get_msr(mod.addr); !cur) {
          why = "KVM on this host has no such MSR";
        } else if (const std::uint64_t v = mod.bits.apply(*cur); !vcpu->set_msr(mod.addr, v).value_or(false)) {
          why = fmt::format("KVM refused the value {:#x}", v);
        }
        if (!why.empty() && id == 0) SPDLOG_WARN("CPU template '{}': not applied: MSR {:#x}: {}", t.name, mod.addr, why);
      }
    }
    KILN_ASSIGN(auto lapic, vcpu->get_lapic());
    x86::set_firmware_lint(lapic);  // the register page is the start of kvm_lapic_state
    KILN_CHECK(vcpu->set_lapic(lapic));
    if (id == 0) {
      KILN_CHECK(vcpu->set_sregs(boot.sregs));
      KILN_CHECK(vcpu->set_regs(boot.regs));
      KILN_CHECK(vcpu->set_fpu(x86::FpuState{}));
    }
    if (auto stats = vcpu->stats()) {
      m.vcpu_stats_.push_back(std::move(*stats));
    } else {
      if (id == 0) SPDLOG_DEBUG("KVM's counters: none to show: {}", stats.error().message());
      m.vcpu_stats_.push_back(std::nullopt);
    }
    m.vcpus_.push_back(std::move(vcpu));
  }
  m.vcpu_tids_.assign(n, std::nullopt);
  for (std::uint32_t i = 0; i < n; ++i) m.mailboxes_.push_back(std::make_unique<VcpuMailbox>());
  return {};
}


}  // namespace kiln
