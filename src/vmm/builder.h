#pragma once
// Config -> a VM ready to run. The config is checked and the kernel and initrd read and checked
// before KVM is opened; then the VM, its memory, irqchip and PIT; the devices, registered with the
// device manager; from its list, the firmware tables and the command line's device arguments; the
// kernel and initrd loaded; the vCPUs set up (CPUID, MSRs, LAPIC, boot registers). What it returns
// runs nothing yet: Machine is the running VM's lifecycle.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "boot/loader.h"
#include "config/vm_config.h"
#include "kvm/kvm.h"
#include "memory/guest_memory.h"
#include "vmm/machine.h"

namespace kiln {

// What a VM of a given memory size needs from KVM before its kernel is known: /dev/kvm, the VM
// with its irqchip and PIT, and guest memory registered. Those calls cost ~10 ms on some hosts
// (KVM_SET_USER_MEMORY_REGION alone 7-15 ms on nested PVM), so the API prepares them while it
// waits for InstanceStart.
struct PreparedVm {
  kvm::Kvm kvm;
  kvm::Vm vm;
  GuestMemory mem;
  std::uint64_t mem_size_mib;
  static Result<PreparedVm> create(std::uint64_t mem_size_mib);
};

class VmBuilder {
 public:
  // Errors name the flag or field and the fix. `prepared` is used if its memory size is the
  // config's (and dropped otherwise).
  static Result<std::unique_ptr<Machine>> build(const VmConfig& config, MachineIo io,
                                                std::optional<PreparedVm> prepared = std::nullopt);

 private:
  struct GuestImages {
    std::vector<std::byte> kernel, initrd;
    std::vector<std::byte> unpacked;  // a bzImage's payload, unpacked by kiln (empty: boot as it is)
    std::string unpacked_note;        // what was unpacked, for the log
    std::string initrd_note;          // how a compressed initrd was unpacked, for the log (empty: it was not)
    std::vector<virtio::DiskImage> disks;  // config.drives', in order: opened and locked
    // config.network_interfaces', in order: taps opened, host forwards listening.
    std::vector<std::unique_ptr<virtio::NetBackend>> nets;
    // The metadata service, serving already (its interfaces' back ends in nets wear it).
    std::unique_ptr<MmdsEndpoint> mmds;
    // The vsock device, its host socket listening already.
    std::shared_ptr<virtio::VsockDevice> vsock;
    // --profile: the report's file (opened now, so a bad path fails before KVM) and the symbols.
    UniqueFd profile_out;
    std::optional<profile::SymbolTable> profile_symbols;
    std::string profile_symbols_note;  // why there are none
  };
  static Result<GuestImages> read_images(const VmConfig& config, HostKind host,
                                         std::shared_ptr<const mmds::DataStore> mmds_store);
  static Result<void> setup_devices(Machine& m, const VmConfig& config, MachineIo io, GuestImages& images);
  // The firmware tables (from the device manager's list, so after the devices exist), then the
  // kernel and initrd, into guest memory.
  static Result<void> load_guest(Machine& m, const VmConfig& config, const GuestImages& images,
                                 std::vector<std::string>& added, boot::LoadedKernel& loaded);
  static Result<void> setup_vcpus(Machine& m, const VmConfig& config, const boot::LoadedKernel& kernel);
  // Timer pacing: the guest's TSC-deadline writes trapped and floored (--timer-floor).
  static Result<void> setup_timer_floor(Machine& m, const TimerFloor& floor);
  // COM1's data register through KVM's coalesced-write ring, where KVM has one (else as before).
  static void coalesce_console(Machine& m);
};

}  // namespace kiln
