#include "kvm/kvm.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "arch/x86/layout.h"
#include "kvm/flex_buffer.h"

namespace kiln::kvm {

static_assert(x86::kCpuidFlagSignificantIndex == KVM_CPUID_FLAG_SIGNIFCANT_INDEX);

namespace {

struct RequiredCap {
  int cap;
  const char* name;
};
constexpr RequiredCap kRequired[] = {
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
    {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
    {KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS"},
    {KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR"},
    {KVM_CAP_XSAVE, "KVM_CAP_XSAVE"},
};

}  // namespace

Result<Kvm> Kvm::open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) {
    const int e = errno;
    if (e == ENOENT)
      return plain_error("cannot open {}: no such device: KVM is not available here; load the kvm module "
                         "(modprobe kvm_intel or kvm_amd) on a host with virtualization enabled", path);
    if (e == EACCES || e == EPERM)
      return plain_error("cannot open {}: permission denied: run as root or add your user to the 'kvm' group",
                         path);
    return plain_error("cannot open {}: {}", path, std::strerror(e));
  }
  const int version = ::ioctl(fd.get(), KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION)
    return plain_error("{}: KVM API version {} (kiln needs {}); this kernel's KVM is not supported", path, version,
                       KVM_API_VERSION);
  for (const auto& c : kRequired) {
    if (::ioctl(fd.get(), KVM_CHECK_EXTENSION, c.cap) <= 0)
      return plain_error("{}: KVM lacks {}, which kiln needs; use a newer host kernel", path, c.name);
  }
  Capabilities caps;
  caps.max_vcpus = ::ioctl(fd.get(), KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
  if (caps.max_vcpus <= 0) caps.max_vcpus = ::ioctl(fd.get(), KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
  if (caps.max_vcpus <= 0) caps.max_vcpus = 4;
  caps.tsc_khz = ::ioctl(fd.get(), KVM_CHECK_EXTENSION, KVM_CAP_GET_TSC_KHZ) > 0;
  caps.irqfd = ::ioctl(fd.get(), KVM_CHECK_EXTENSION, KVM_CAP_IRQFD) > 0;
  caps.ioeventfd = ::ioctl(fd.get(), KVM_CHECK_EXTENSION, KVM_CAP_IOEVENTFD) > 0;
  caps.tsc_deadline_timer = ::ioctl(fd.get(), KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
  // The answer is the ring's page offset in the vCPU mapping.
  const int ring_page = ::ioctl(fd.get(), KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_MMIO);
  caps.coalesced_ring_page = static_cast<std::uint32_t>(std::max(0, ring_page));
  caps.coalesced_pio = ::ioctl(fd.get(), KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_PIO) > 0;
  const int mmap_size = ::ioctl(fd.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (mmap_size < static_cast<int>(sizeof(kvm_run))) return errno_error("KVM_GET_VCPU_MMAP_SIZE");
  return Kvm(std::move(fd), caps, static_cast<std::size_t>(mmap_size));
}

Result<std::vector<x86::CpuidEntry>> Kvm::supported_cpuid() const {
  constexpr std::size_t kMaxEntries = 256;
  FlexBuffer<kvm_cpuid_entry2> buf(kMaxEntries);
  if (::ioctl(fd_.get(), kIoctlGetSupportedCpuid, buf.data()) != 0) return errno_error("KVM_GET_SUPPORTED_CPUID");
  std::vector<x86::CpuidEntry> out;
  for (std::uint32_t i = 0; i < buf.count(); ++i) {
    const auto e = buf.get(i);
    out.push_back({e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx});
  }
  return out;
}

Result<Vm> Kvm::create_vm() const {
  int fd = -1;
  do {
    fd = ::ioctl(fd_.get(), KVM_CREATE_VM, 0);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno_error("KVM_CREATE_VM");
  return Vm(UniqueFd(fd), vcpu_mmap_size_);
}

Result<void> Vm::setup_platform() {
  if (::ioctl(fd_.get(), KVM_SET_TSS_ADDR, x86::kTssAddr) != 0) return errno_error("KVM_SET_TSS_ADDR");
  std::uint64_t ident = x86::kIdentityMapAddr;
  if (::ioctl(fd_.get(), KVM_SET_IDENTITY_MAP_ADDR, &ident) != 0) return errno_error("KVM_SET_IDENTITY_MAP_ADDR");
  if (::ioctl(fd_.get(), KVM_CREATE_IRQCHIP, 0) != 0) return errno_error("KVM_CREATE_IRQCHIP");
  kvm_pit_config pit{};
  pit.flags = KVM_PIT_SPEAKER_DUMMY;
  if (::ioctl(fd_.get(), KVM_CREATE_PIT2, &pit) != 0) return errno_error("KVM_CREATE_PIT2");
  return {};
}

Result<void> Vm::register_memory(const GuestMemory& mem) {
  std::uint32_t slot = 0;
  for (const auto& r : mem.regions()) {
    kvm_userspace_memory_region reg{};
    reg.slot = slot++;
    reg.guest_phys_addr = r.start.value;
    reg.memory_size = r.size();
    reg.userspace_addr = reinterpret_cast<std::uint64_t>(r.mapping.data());
    if (::ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &reg) != 0)
      return errno_error("KVM_SET_USER_MEMORY_REGION (slot {}, {:#x}+{:#x})", reg.slot, reg.guest_phys_addr,
                         reg.memory_size);
  }
  return {};
}

Result<Vcpu> Vm::create_vcpu(std::uint32_t id) const {
  UniqueFd fd(::ioctl(fd_.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id)));
  if (!fd) return errno_error("KVM_CREATE_VCPU {}", id);
  auto run = Mmap::shared_fd(fd.get(), vcpu_mmap_size_);
  if (!run) return std::unexpected(run.error());
  return Vcpu(std::move(fd), std::move(*run), id);
}

Result<void> Vm::set_irq_line(std::uint32_t irq, bool level) const {
  kvm_irq_level l{};
  l.irq = irq;
  l.level = level ? 1 : 0;
  if (::ioctl(fd_.get(), KVM_IRQ_LINE, &l) != 0) return errno_error("KVM_IRQ_LINE {}", irq);
  return {};
}

Result<void> Vm::trap_msr_writes(std::span<const std::uint32_t> indices) const {
  if (indices.size() > KVM_MSR_FILTER_MAX_RANGES) return plain_error("at most {} MSRs can be trapped", KVM_MSR_FILTER_MAX_RANGES);
  kvm_enable_cap cap{};
  cap.cap = KVM_CAP_X86_USER_SPACE_MSR;
  cap.args[0] = KVM_MSR_EXIT_REASON_FILTER;
  if (::ioctl(fd_.get(), KVM_ENABLE_CAP, &cap) != 0) return errno_error("KVM_ENABLE_CAP KVM_CAP_X86_USER_SPACE_MSR");
  // One range per MSR; its single bitmap bit is 0: writes denied, so they exit to user space.
  std::array<std::uint8_t, KVM_MSR_FILTER_MAX_RANGES> deny{};
  kvm_msr_filter f{};
  f.flags = KVM_MSR_FILTER_DEFAULT_ALLOW;
  for (std::size_t i = 0; i < indices.size(); ++i) {
    f.ranges[i].flags = KVM_MSR_FILTER_WRITE;
    f.ranges[i].nmsrs = 1;
    f.ranges[i].base = indices[i];
    f.ranges[i].bitmap = &deny[i];
  }
  if (::ioctl(fd_.get(), KVM_X86_SET_MSR_FILTER, &f) != 0) return errno_error("KVM_X86_SET_MSR_FILTER");
  return {};
}

Result<void> Vm::coalesce_pio(std::uint16_t port, std::uint32_t len) const {
  kvm_coalesced_mmio_zone zone{};
  zone.addr = port;
  zone.size = len;
  zone.pio = 1;
  if (::ioctl(fd_.get(), KVM_REGISTER_COALESCED_MMIO, &zone) != 0)
    return errno_error("KVM_REGISTER_COALESCED_MMIO (ports {:#x}+{})", port, len);
  return {};
}

}  // namespace kiln::kvm

namespace kiln::kvm {

namespace {

// struct kvm_msr_list and kvm_irq_routing end in flexible arrays (see flex_buffer.h): the C
// sizes are 4 and 8.
constexpr unsigned long kIoctlGetMsrIndexList = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x02, 4);
constexpr unsigned long kIoctlSetGsiRouting = _IOC(_IOC_WRITE, KVMIO, 0x6a, kFlexHeaderSize);
static_assert(kIoctlGetMsrIndexList == 0xc004ae02);
static_assert(kIoctlSetGsiRouting == 0x4008ae6a);

kvm_ioeventfd to_kvm(int eventfd, const IoEventAddress& at) {
  kvm_ioeventfd k{};
  k.fd = eventfd;
  k.addr = at.addr;
  k.len = at.len;
  if (at.space == IoEventAddress::Space::kPio) k.flags |= KVM_IOEVENTFD_FLAG_PIO;
  if (at.datamatch) {
    k.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
    k.datamatch = *at.datamatch;
  }
  return k;
}

const char* space_name(const IoEventAddress& at) { return at.space == IoEventAddress::Space::kPio ? "port" : "MMIO"; }

}  // namespace

Result<std::vector<std::uint32_t>> Kvm::msr_index_list() const {
  std::vector<std::uint32_t> buf(1 + 1024);
  buf[0] = 1024;
  if (::ioctl(fd_.get(), kIoctlGetMsrIndexList, buf.data()) != 0) return errno_error("KVM_GET_MSR_INDEX_LIST");
  return std::vector<std::uint32_t>(buf.begin() + 1, buf.begin() + 1 + std::min<std::uint32_t>(buf[0], 1024));
}

Result<void> Vm::register_ioeventfd(int eventfd, const IoEventAddress& at) const {
  auto k = to_kvm(eventfd, at);
  if (::ioctl(fd_.get(), KVM_IOEVENTFD, &k) != 0)
    return errno_error("KVM_IOEVENTFD: {} {:#x} ({} bytes)", space_name(at), at.addr, at.len);
  return {};
}

Result<void> Vm::unregister_ioeventfd(int eventfd, const IoEventAddress& at) const {
  auto k = to_kvm(eventfd, at);
  k.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
  if (::ioctl(fd_.get(), KVM_IOEVENTFD, &k) != 0)
    return errno_error("KVM_IOEVENTFD (deassign): {} {:#x}", space_name(at), at.addr);
  return {};
}

Result<void> Vm::register_irqfd(int eventfd, std::uint32_t gsi) const {
  kvm_irqfd k{};
  k.fd = static_cast<std::uint32_t>(eventfd);
  k.gsi = gsi;
  if (::ioctl(fd_.get(), KVM_IRQFD, &k) != 0) return errno_error("KVM_IRQFD: GSI {}", gsi);
  return {};
}

Result<void> Vm::unregister_irqfd(int eventfd, std::uint32_t gsi) const {
  kvm_irqfd k{};
  k.fd = static_cast<std::uint32_t>(eventfd);
  k.gsi = gsi;
  k.flags = KVM_IRQFD_FLAG_DEASSIGN;
  if (::ioctl(fd_.get(), KVM_IRQFD, &k) != 0) return errno_error("KVM_IRQFD (deassign): GSI {}", gsi);
  return {};
}

std::vector<GsiRoute> Vm::default_gsi_routes() {
  std::vector<GsiRoute> routes;
  for (std::uint32_t gsi = 0; gsi < 24; ++gsi) {
    if (gsi < 16) routes.push_back({gsi, IrqchipPin{gsi < 8 ? 0u : 1u, gsi % 8}});
    routes.push_back({gsi, IrqchipPin{2, gsi}});
  }
  return routes;
}

Result<void> Vm::set_gsi_routing(std::span<const GsiRoute> routes) const {
  FlexBuffer<kvm_irq_routing_entry> buf(routes.size());
  for (std::size_t i = 0; i < routes.size(); ++i) {
    kvm_irq_routing_entry e{};
    e.gsi = routes[i].gsi;
    if (const auto* pin = std::get_if<IrqchipPin>(&routes[i].to)) {
      e.type = KVM_IRQ_ROUTING_IRQCHIP;
      e.u.irqchip.irqchip = pin->chip;
      e.u.irqchip.pin = pin->pin;
    } else {
      const auto& msi = std::get<MsiMessage>(routes[i].to);
      e.type = KVM_IRQ_ROUTING_MSI;
      e.u.msi.address_lo = static_cast<std::uint32_t>(msi.address);
      e.u.msi.address_hi = static_cast<std::uint32_t>(msi.address >> 32);
      e.u.msi.data = msi.data;
    }
    buf.set(i, e);
  }
  if (::ioctl(fd_.get(), kIoctlSetGsiRouting, buf.data()) != 0)
    return errno_error("KVM_SET_GSI_ROUTING ({} routes)", routes.size());
  return {};
}

Result<void> Vm::signal_msi(const MsiMessage& msi) const {
  kvm_msi k{};
  k.address_lo = static_cast<std::uint32_t>(msi.address);
  k.address_hi = static_cast<std::uint32_t>(msi.address >> 32);
  k.data = msi.data;
  // 1: delivered; 0: the guest blocked it (masked); both are fine.
  if (::ioctl(fd_.get(), KVM_SIGNAL_MSI, &k) < 0) return errno_error("KVM_SIGNAL_MSI {:#x}/{:#x}", msi.address, msi.data);
  return {};
}

Result<VmState> Vm::save_state() const {
  VmState s;
  for (auto [chip, out] : {std::pair{KVM_IRQCHIP_PIC_MASTER, &s.pic_master}, {KVM_IRQCHIP_PIC_SLAVE, &s.pic_slave},
                           {KVM_IRQCHIP_IOAPIC, &s.ioapic}}) {
    kvm_irqchip c{};
    c.chip_id = static_cast<std::uint32_t>(chip);
    if (::ioctl(fd_.get(), KVM_GET_IRQCHIP, &c) != 0) return errno_error("KVM_GET_IRQCHIP {}", chip);
    out->resize(sizeof(c));
    std::memcpy(out->data(), &c, sizeof(c));
  }
  kvm_pit_state2 pit{};
  if (::ioctl(fd_.get(), KVM_GET_PIT2, &pit) != 0) return errno_error("KVM_GET_PIT2");
  s.pit.resize(sizeof(pit));
  std::memcpy(s.pit.data(), &pit, sizeof(pit));
  kvm_clock_data clock{};
  if (::ioctl(fd_.get(), KVM_GET_CLOCK, &clock) != 0) return errno_error("KVM_GET_CLOCK");
  s.clock_ns = clock.clock;
  s.clock_flags = clock.flags;
  return s;
}

Result<void> Vm::restore_state(const VmState& s) const {
  for (const auto* chip : {&s.pic_master, &s.pic_slave, &s.ioapic}) {
    if (chip->size() != sizeof(kvm_irqchip)) return plain_error("irqchip state: {} bytes, not {}", chip->size(), sizeof(kvm_irqchip));
    kvm_irqchip c{};
    std::memcpy(&c, chip->data(), sizeof(c));
    if (::ioctl(fd_.get(), KVM_SET_IRQCHIP, &c) != 0) return errno_error("KVM_SET_IRQCHIP {}", c.chip_id);
  }
  if (s.pit.size() != sizeof(kvm_pit_state2)) return plain_error("PIT state: {} bytes, not {}", s.pit.size(), sizeof(kvm_pit_state2));
  kvm_pit_state2 pit{};
  std::memcpy(&pit, s.pit.data(), sizeof(pit));
  if (::ioctl(fd_.get(), KVM_SET_PIT2, &pit) != 0) return errno_error("KVM_SET_PIT2");
  kvm_clock_data clock{};
  clock.clock = s.clock_ns;
  if (::ioctl(fd_.get(), KVM_SET_CLOCK, &clock) != 0) return errno_error("KVM_SET_CLOCK");
  return {};
}

}  // namespace kiln::kvm
