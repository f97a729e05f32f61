#include "vmm/host.h"

#include <sys/stat.h>

namespace kiln {

HostKind detect_host(const std::string& dir) {
  struct stat st{};
  if (::stat((dir + "/kvm_pvm").c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return HostKind::kNestedPvm;
  return HostKind::kHardware;
}

const char* host_name(HostKind k) {
  return k == HostKind::kNestedPvm ? "nested PVM (kvm_pvm)" : "hardware virtualization";
}

std::vector<std::string> host_kernel_args(HostKind k) {
  if (k != HostKind::kNestedPvm) return {};
  // On PVM the host's emulator runs guest kernel code and gives up on XSAVE state, several SIMD
  // extensions and SMAP's stac/clac: hide them so the kernel does not use them, and skip the
  // crypto self-tests and I/O delays that take minutes under emulation.
  //
  // With noxsave the kernel switches only the x87/SSE state between tasks (FXSAVE), but guest user
  // space runs natively and sees the host's CPUID and XCR0 (AVX and AVX-512 enabled), so glibc
  // picks its AVX2/EVEX string functions and one task's YMM/ZMM upper halves leak into another's
  // (seen: busybox segfaulting in its first instructions, a static test's YMM registers wrong in
  // 1 of 2 time slices). The kernel passes GLIBC_TUNABLES on to init's environment; with it every
  // glibc program (Debian's user space included) keeps to SSE. Code that uses AVX on its own
  // is not covered, and kiln cannot cover it here: PVM does not switch XCR0 for the guest, and a
  // kernel that saved AVX state would have to believe it has AVX, and use it where the host's
  // emulator gives up.
  //
  // ERMS and FSRM (297, 580) are hidden for speed: with them the kernel clears and copies memory
  // with rep stosb/movsb, which the emulator runs a byte per iteration; without them it uses rep
  // stosq/movsq, eight bytes per iteration (8 MiB written to a tmpfs file from /dev/zero: 27.5 s
  // with them, 10.2 s without).
  //
  // noreplace-smp: a kernel that finds one possible CPU rewrites every lock prefix in its text at
  // boot, each patch emulated (the test kernel's SMP alternatives: 2.5 s with it, 0.7 s without).
  // The prefixes stay; a locked instruction costs the emulator no more than a plain one.
  //
  // initcall_blacklist=ftrace_check_for_weak_functions: kernels with this initcall (Debian's 6.1
  // among them) check every ftrace record at boot with a kallsyms lookup (37 697 there), to hide the
  // __fentry__ sites of overridden weak functions, which the linker leaves behind as dead code.
  // Here that check alone was 82 M emulated instructions, 18 % of a stock boot to power-off (Run
  // /init at 338 s instead of 411 s). Without it those dead sites stay in ftrace's list, under the
  // name of the function before them: tracing them patches code that never runs. A kernel without
  // one of the initcalls named here ignores that name; a kernel with kallsyms then looks up each
  // initcall's name once.
  //
  // initcall_blacklist=...,trace_eval_init: at boot that kernel rewrites the print format of each
  // of its trace events, replacing the enum names the format uses by their values (about 2 000
  // events checked against each TRACE_DEFINE_ENUM map with strncmp and strstr), so that user-space
  // tracers (perf, trace-cmd) reading the events' `format` files can decode those fields. With
  // one vCPU that work is on the way to init whatever the workqueue it runs in: Run /init came
  // 44 s sooner without it (Debian's 6.1 cloud kernel, 1 vCPU, two boots side by side on the two
  // cores, 305.7 s and 261.5 s; alone, with the self-test below skipped too, 273.0 s and 243.9 s
  // by bench/boot.py). Without it those format files show the enum names, which user-space
  // tracers then print raw; the kernel's own trace output (the `trace` file) is not affected, and
  // trace events work.
  //
  // initcall_blacklist=...,blake2s_mod_init: the BLAKE2s library's self-test against its test
  // vectors, 4.3 s of that kernel's boot here (initcall_debug), the kind of check that
  // cryptomgr.notests already skips for the crypto API. That kernel's x86 BLAKE2s glue has an
  // initcall of the same name, which picks its SSSE3 or AVX-512 code: both are hidden here
  // (clearcpuid), so it would pick nothing; BLAKE2s itself (the random pool's hash) is unchanged.
  //
  // initcall_blacklist=...,crypto_kdf108_init: the SP800-108 KDF's self-test (an HMAC-SHA256 test
  // vector, 0.55 s here by initcall_debug); in 6.1 it runs even with cryptomgr.notests, and the
  // initcall does nothing else.
  //
  // spec_rstack_overflow=off: on AMD family 19h CPUs such a kernel mitigates SRSO with "safe RET":
  // every return of kernel code jumps to a thunk (call, lea, ret), so that user space cannot steer
  // the CPU's return prediction in the kernel. Here the CPU never runs guest kernel code, the
  // host's emulator does, so there is nothing to steer, and each return costs three more emulated
  // instructions: the thunks held 5 % of a stock boot's profile. Debian's 6.1 cloud kernel, 1 vCPU,
  // to Run /init, two boots side by side: 282.8 M emulated instructions in 234.9 s with them,
  // 268.6 M in 220.3 s without (another pair: 273.6 s and 253.4 s).
  // Guest user space runs natively, and its own protections (IBPB and STIBP between tasks,
  // spectre_v2_user) are left as they are. The kernel still rewrites every return site at boot
  // (to a plain ret instead of a jump to the thunk), so that cost does not change.
  //
  // percpu_alloc=page: the default first per-CPU chunk is a 2 MiB unit per possible CPU, allocated
  // and zeroed whole with memset before the unused part goes back. A kernel whose compiler inlined
  // that memset as rep stosb (the test kernel's GCC 12 build does, in memblock_alloc_try_nid) has
  // it run a byte per emulated iteration: 1.1 s per CPU before the console is up. The page
  // allocator takes only the pages the chunk needs (37 there: 0.3 s). The test kernel reached init
  // 1.2 s sooner (medians of 3 boots each, A/B alternating, 23.6 s -> 22.3 s). Debian's stock
  // kernel has the same inlined rep stosb there but did not gain measurably (1 vCPU, two boots
  // side by side: console up at 66.9 s and 66.2 s, init at 291.5 s and 293.7 s); why it pays
  // less for it was not found.
  // Per-CPU data then sits in 4 KiB vmalloc pages instead of the direct map's large pages: a
  // TLB cost that does not show beside the emulation.
  return {
      "noreplace-smp",
      "spec_rstack_overflow=off",
      "percpu_alloc=page",
      "initcall_blacklist=ftrace_check_for_weak_functions,trace_eval_init,blake2s_mod_init,crypto_kdf108_init",
      "noxsave",
      "clearcpuid=308,151,137,147,148,129,153,317,520,521,522,156,293,304,140,157,297,580",
      "io_delay=none",
      "cryptomgr.notests",
      kGlibcNoAvxTunables,
  };
}

HostQuirks host_quirks(HostKind k) {
  if (k != HostKind::kNestedPvm) return {};
  return {.hide_cx16 = true, .hide_pv_hypercalls = true};
}

}  // namespace kiln
