// The floor: the least a VMM can do per port-I/O exit. Loads a PVH guest with kiln's loader,
// sets up one vCPU, and loops on KVM_RUN with no bus, no devices and no threads; a write to the
// debug-exit port (0xf4) ends it. Usage: bare_kvm_loop GUEST.elf "CMDLINE"
#include <cstdio>
#include <string>

#include "arch/x86/boot_cpu.h"
#include "arch/x86/cpuid.h"
#include "boot/loader.h"
#include "kvm/kvm.h"

using namespace kiln;

namespace {
int fail(const Error& e) {
  std::fprintf(stderr, "bare_kvm_loop: %s\n", e.message().c_str());
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: bare_kvm_loop GUEST.elf CMDLINE\n");
    return 2;
  }
  auto image = boot::read_image_file(argv[1], "guest");
  if (!image) return fail(image.error());
  const auto layout = x86_ram_layout(64 << 20);
  auto mem = GuestMemory::create(layout);
  if (!mem) return fail(mem.error());
  auto loaded = boot::load_linux(*mem, *image, {}, argv[2]);
  if (!loaded) return fail(loaded.error());
  auto kvm = kvm::Kvm::open();
  if (!kvm) return fail(kvm.error());
  auto vm = kvm->create_vm();
  if (!vm) return fail(vm.error());
  if (auto r = vm->setup_platform(); !r) return fail(r.error());
  if (auto r = vm->register_memory(*mem); !r) return fail(r.error());
  auto vcpu = vm->create_vcpu(0);
  if (!vcpu) return fail(vcpu.error());
  auto cpuid = kvm->supported_cpuid();
  if (!cpuid) return fail(cpuid.error());
  x86::apply_cpuid_fixups(*cpuid, {});
  auto st = x86::setup_boot_cpu(*mem, loaded->mode, loaded->entry, loaded->boot_info_addr);
  if (!st) return fail(st.error());
  if (auto r = vcpu->set_cpuid(*cpuid); !r) return fail(r.error());
  if (auto r = vcpu->set_sregs(st->sregs); !r) return fail(r.error());
  if (auto r = vcpu->set_regs(st->regs); !r) return fail(r.error());
  for (;;) {
    auto exit = vcpu->run();
    if (!exit) return fail(exit.error());
    if (auto* out = std::get_if<kvm::IoOut>(&*exit); out != nullptr && out->port == 0xf4) return 0;
    if (std::holds_alternative<kvm::IoOut>(*exit) || std::holds_alternative<kvm::IoIn>(*exit)) continue;
    std::fprintf(stderr, "bare_kvm_loop: unexpected exit %zu\n", exit->index());
    return 1;
  }
}
