#include "kvm/kvm.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

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

}  // namespace kiln::kvm
