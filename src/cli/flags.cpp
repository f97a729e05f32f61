#include "cli/flags.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cctype>
#include <fstream>

#include "vmm/exit_status.h"

namespace kiln {

namespace {

constexpr const char* kExamples = R"(
Examples:
  kiln run --kernel bzImage --initrd initramfs.cpio --cmdline "console=ttyS0 rdinit=/init"
  kiln run --kernel vmlinux --cpus 2 --memory 1G --serial file:console.log
  kiln run --kernel /boot/vmlinuz-6.1.0-28-cloud-amd64 --initrd initrd.img --boot-timer
  kiln run --kernel bzImage --disk path=rootfs.ext4,root --disk path=data.img,readonly --rng

The console is the terminal: type to the guest, Ctrl-A x quits, Ctrl-A Ctrl-A sends Ctrl-A.
)";

constexpr const char* kApiExamples = R"(
Examples:
  kiln --api-sock /tmp/kiln.sock        then configure and start the VM with Firecracker's API:
    curl --unix-socket /tmp/kiln.sock -X PUT http://localhost/boot-source \
         -d '{"kernel_image_path": "vmlinux", "boot_args": "console=ttyS0"}'
    curl --unix-socket /tmp/kiln.sock -X PUT http://localhost/actions -d '{"action_type": "InstanceStart"}'
  kiln --config-file vm.json --no-api   boot the VM vm.json describes (the shape of GET /vm/config)
  kiln run --help                       boot a kernel from flags alone
)";

Result<VmConfig> read_config_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) return plain_error("--config-file: cannot open '{}' (check the path)", path);
  nlohmann::json j = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return plain_error("--config-file '{}': not valid JSON", path);
  auto c = vm_config_from_json(j);
  if (!c) return plain_error("--config-file '{}': {}", path, c.error().message());
  return c;
}

Result<CpuConfig> read_cpu_config_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) return plain_error("--cpu-config: cannot open '{}' (check the path)", path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const nlohmann::json::parse_error& e) {
    return plain_error("--cpu-config '{}': not valid JSON: {}", path, e.what());
  }
  auto t = cpu_template_from_json(j, "cpu-config");
  if (!t) return plain_error("--cpu-config '{}': {}", path, t.error().message());
  return CpuConfig{std::move(j), std::move(*t)};
}

Result<nlohmann::json> read_metadata_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) return plain_error("--metadata: cannot open '{}' (check the path)", path);
  nlohmann::json j = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return plain_error("--metadata '{}': not valid JSON", path);
  return j;
}

std::string first_line(std::string s) {
  if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  return s;
}

}  // namespace

Result<std::variant<RunCommand, ShowText>> parse_command_line(std::vector<std::string> args) {
  CLI::App app{"kiln: a virtual machine monitor for Linux KVM", "kiln"};
  app.set_version_flag("--version", std::string("kiln ") + KILN_VERSION);
  app.require_subcommand(0, 1);
  app.footer(std::string(kApiExamples) + "\n" + kExitCodeHelp);

  RunCommand cmd;
  std::string config_file, top_serial = "stdio";
  bool no_api = false, top_boot_timer = false;
  app.add_option("--api-sock", cmd.api_sock,
                 "serve Firecracker's REST API on this Unix socket (the path must not exist yet)");
  app.add_option("--config-file", config_file,
                 "boot the VM this JSON file describes, in the shape of GET /vm/config (boot-source, "
                 "machine-config, ...)");
  app.add_flag("--no-api", no_api, "serve no API (needs --config-file)");
  app.add_option("--id", cmd.id, "the instance id GET / reports")->default_val("anonymous-instance");
  app.add_flag("--boot-timer", top_boot_timer,
               "log the time from kiln's start to the guest's write of 123 to port 0x3f0");
  app.add_option("--serial", top_serial, "where COM1 goes: stdio, file:PATH or none (default stdio)");
  std::string metadata_file;
  // The limits of what the API takes, as Firecracker's flags of the same names.
  auto add_mmds_store_flags = [&](CLI::App& to) {
    to.add_option("--http-api-max-payload-size", cmd.http_api_max_payload_size,
                  "the largest request body the API takes, in bytes (default 51200); larger ones get a 400")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30));
    to.add_option("--metadata", metadata_file,
                  "a JSON file put into the metadata service's store (MMDS) at start, as PUT /mmds would")
        ->check(CLI::ExistingFile);
    to.add_option("--mmds-size-limit", cmd.mmds_size_limit,
                  "the largest the metadata service's store may grow, in bytes of compact JSON (default: "
                  "--http-api-max-payload-size)")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30));
  };
  add_mmds_store_flags(app);
  app.add_option("--level", cmd.log_level, "log level: error, warn, info, debug, trace or off")
      ->default_val("info")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}, CLI::ignore_case));
  VmConfig& c = cmd.config;
  std::string initrd, cmdline, memory = "256M", serial = "stdio";
  CLI::App* run = app.add_subcommand("run", "boot a Linux kernel in a new VM and run it to its end");
  run->footer(std::string(kExamples) + "\n" + kExitCodeHelp);
  run->add_option("--kernel", c.boot_source.kernel_image_path, "Linux kernel: a bzImage or an ELF vmlinux with a PVH note")
      ->required()
      ->check(CLI::ExistingFile);
  run->add_option("--initrd", initrd, "initial ramdisk (cpio, optionally compressed)")->check(CLI::ExistingFile);
  run->add_option("--cmdline", cmdline, std::string("kernel command line (default: \"") + kDefaultBootArgs + "\")");
  run->add_option("--cpus", c.machine_config.vcpu_count, "number of vCPUs")
      ->default_val(1)
      ->check(CLI::Range(1u, kMaxVcpus));
  std::string cpu_config_file;
  std::string cpu_template = "host";
  run->add_option("--cpu-template", cpu_template,
                  "CPU model: host (what KVM offers) or minimal (the x86-64 baseline plus what a VM guest needs)")
      ->default_val("host");
  run->add_option("--cpu-config", cpu_config_file,
                  "JSON file of CPUID and MSR modifiers, in the shape of Firecracker's /cpu-config "
                  "(cpuid_modifiers, msr_modifiers), applied over --cpu-template");
  run->add_option("--memory", memory, "guest RAM: a number of MiB or a size with K/M/G/T (default 256M)");
  run->add_option("--serial", serial, "where COM1 goes: stdio, file:PATH or none (default stdio)");
  run->add_flag("--boot-timer", c.kiln.boot_timer,
                "log the time from kiln's start to the guest's write of 123 to port 0x3f0");
  std::vector<std::string> disks;
  run->add_option("--disk", disks,
                  "a virtio-blk disk on a raw image (repeatable): path=FILE[,id=ID][,readonly][,root][,serial=S]"
                  "[,cache=writeback|unsafe][,engine=uring|sync]. root: the guest's root file system (adds "
                  "root=/dev/vda rw, or ro). cache=writeback (default): a flush the guest sends reaches fdatasync "
                  "before it completes; cache=unsafe skips that: faster, but a host crash or power loss can lose "
                  "writes the guest was told are safe. engine=uring (default): reads and flushes through io_uring, many at once, "
                  "buffered writes copied into the page cache at once; "
                  "engine=sync: blocking I/O on the VMM thread, for hosts without io_uring")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  std::string transport = "mmio";
  run->add_option("--transport", transport,
                  "how virtio devices reach the guest: mmio (the default, because Firecracker's guest kernels "
                  "are built for it and many have no PCI; announced on the command line and in the DSDT) or pci "
                  "(virtio-pci behind a PCI host bridge, MSI-X; distribution kernels load it on their own)")
      ->check(CLI::IsMember({"mmio", "pci"}));
  bool rng = false;
  run->add_flag("--rng", rng, "a virtio-rng device, fed by the host's getrandom(2)");
  std::vector<std::string> nets;
  run->add_option("--net", nets,
                  "a virtio-net interface (repeatable): tap=NAME[,mac=MAC][,id=ID] on a tap you made (`ip tuntap add "
                  "NAME mode tap user $USER`), or user[,hostfwd=tcp:[HOSTADDR]:HOSTPORT-:GUESTPORT ...][,mac=MAC][,id=ID]: "
                  "user-mode networking (libslirp, as QEMU's -netdev user; no root): the guest gets 10.0.2.15 by DHCP, "
                  "its gateway 10.0.2.2 is the host, DNS at 10.0.2.3, and each hostfwd (repeatable) forwards a host "
                  "port to the guest. Without mac= the guest's driver picks a random address")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  std::string vsock;
  run->add_option("--vsock", vsock,
                  "a virtio-vsock device: cid=N,uds=PATH (Firecracker's design): the guest is CID N (3 or more); a "
                  "host program connects to the Unix socket PATH and writes \"CONNECT <port>\\n\" to reach the "
                  "guest's port (kiln answers \"OK <host port>\\n\"), and the guest's connections to the host (CID "
                  "2) port P go to the Unix socket PATH_P. PATH must not exist");
  std::string mmds;
  run->add_option("--mmds", mmds,
                  "the metadata service (Firecracker's MMDS) on --net interfaces: [version=V1|V2][,ipv4=ADDR]"
                  "[,iface=ID ...]. The guest reaches it at ADDR (default 169.254.169.254) port 80 over those "
                  "interfaces (default: all), without its packets reaching the host's network; V2 wants a session "
                  "token (PUT /latest/api/token) on every GET. Its data: --metadata FILE or PUT /mmds on --api-sock");
  add_mmds_store_flags(*run);
  std::string unpack = "auto";
  run->add_option("--unpack-kernel", unpack,
                  "auto (default), on or off: kiln unpacks a bzImage's compressed kernel itself (gzip, xz, lzma, "
                  "lz4, zstd, bzip2) and starts it at its 64-bit entry, so no decompressor runs in the guest. auto: "
                  "on nested-PVM hosts only, where the guest's decompressor is emulated and takes minutes; "
                  "elsewhere it runs natively in milliseconds and places the kernel at a random address (KASLR), "
                  "which an unpacked kernel does not get. The same setting unpacks a compressed initrd (gzip, xz, "
                  "lzma, zstd, bzip2; its plain cpio parts kept) into plain cpio, where guest memory holds that "
                  "twice over with 64 MiB to spare")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  std::string timer_floor = "auto";
  run->add_option("--timer-floor", timer_floor,
                  "auto (default), off, or MICROSECONDS (100 to 1000000): the soonest a vCPU's TSC-deadline timer "
                  "may fire after the guest arms it; a sooner deadline is moved to it, so a busy guest takes at most "
                  "one timer interrupt per floor. auto: 20000 on nested-PVM hosts only, where each tick of the "
                  "guest's kernel is emulated and costs milliseconds (at HZ=250 the ticks take most of the CPU; "
                  "Debian's stock kernel reaches init about twice as fast with it); elsewhere the timer is KVM's "
                  "alone. Its cost: the guest's timers fire up to the floor late, and each write of the deadline "
                  "exits to kiln");
  std::string profile_path, profile_symbols;
  unsigned profile_hz = 1000, profile_top = 40;
  run->add_option("--profile", profile_path,
                  "sample each vCPU's instruction pointer and privilege level from kiln while the guest runs, "
                  "and write the hottest guest functions to FILE when the VM ends, then KVM's own counters and "
                  "kiln's exits with their rates (a profiler inside the VMM: no guest support needed)");
  run->add_option("--profile-hz", profile_hz, "samples a second per vCPU for --profile (default 1000; each one "
                  "takes the vCPU out of the guest once)");
  run->add_option("--profile-symbols", profile_symbols,
                  "symbols for --profile: a System.map (for Debian's kernels the one in linux-image-*-dbg: "
                  "/boot/System.map-* is a placeholder) or an ELF with a "
                  "symbol table (default: the --kernel itself when it is an ELF vmlinux); a KASLR kernel's slide "
                  "is found from its syscall entry (MSR_LSTAR)");
  run->add_option("--profile-top", profile_top, "functions the --profile report lists, hottest first (default 40)");
  bool no_host_args = false;
  run->add_flag("--no-host-args", no_host_args, "do not add the kernel arguments this kind of KVM host needs");
  bool no_syscall_fix = false;
  run->add_flag("--no-syscall-fix", no_syscall_fix,
                "on nested-PVM hosts, do not install the syscall redirect: there a guest's 64-bit SYSCALL from user "
                "mode faults instead of entering the kernel, and kiln points the kernel's page-fault gate at a "
                "64-byte stub (in the int3 padding after its entry code) that turns such a fault into the system "
                "call, so an unmodified kernel's user space runs. Other hosts never get it");
  run->add_option("--api-sock", cmd.api_sock, "also serve Firecracker's REST API on this Unix socket while the VM runs");
  run->add_option("--log-level", cmd.log_level, "trace, debug, info, warn, error or off")
      ->default_val("info")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));

  std::vector<std::string> rev(args.rbegin(), args.rend());
  if (!rev.empty()) rev.pop_back();  // argv[0]
  try {
    app.parse(rev);
  } catch (const CLI::CallForHelp&) {
    return ShowText{app.help()};
  } catch (const CLI::CallForAllHelp&) {
    return ShowText{app.help("", CLI::AppFormatMode::All)};
  } catch (const CLI::CallForVersion& e) {
    return ShowText{std::string("kiln ") + KILN_VERSION + "\n"};
  } catch (const CLI::ParseError& e) {
    // CLI11 wants the subcommand's own help for `kiln run --help`.
    if (run->get_help_ptr() != nullptr && run->count("--help") > 0) return ShowText{run->help()};
    return plain_error("{} (see 'kiln run --help')", first_line(e.what()));
  }
  if (run->count("--help") > 0) return ShowText{run->help()};
  if (app.count("--mmds-size-limit") + run->count("--mmds-size-limit") == 0)
    cmd.mmds_size_limit = cmd.http_api_max_payload_size;
  if (!*run) {
    if (no_api && config_file.empty()) return plain_error("--no-api needs --config-file FILE: nothing else could start the VM");
    if (no_api && !cmd.api_sock.empty()) return plain_error("--no-api and --api-sock: give one or the other");
    if (config_file.empty() && cmd.api_sock.empty())
      return plain_error("nothing to do: give 'run --kernel FILE' to boot a kernel, --api-sock PATH to wait for API "
                         "calls, or --config-file FILE (see kiln --help)");
    for (char& ch : cmd.log_level) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (config_file.empty()) {
      cmd.start_now = false;
      KILN_ASSIGN(c.kiln.serial, parse_serial(top_serial));
    } else {
      KILN_ASSIGN(c, read_config_file(config_file));
      if (app.count("--serial") > 0) {
        KILN_ASSIGN(c.kiln.serial, parse_serial(top_serial));
      }
    }
    if (top_boot_timer) c.kiln.boot_timer = true;
    if (!metadata_file.empty()) {
      KILN_ASSIGN(cmd.metadata, read_metadata_file(metadata_file));
    }
    return cmd;
  }

  if (!initrd.empty()) c.boot_source.initrd_path = initrd;
  if (run->count("--cmdline") > 0) c.boot_source.boot_args = cmdline;
  KILN_ASSIGN(c.machine_config.mem_size_mib, parse_mem_size_mib(memory));
  KILN_ASSIGN(c.machine_config.cpu_template, parse_cpu_template_name(cpu_template));
  KILN_ASSIGN(c.kiln.serial, parse_serial(serial));
  c.kiln.host_kernel_args = !no_host_args;
  c.kiln.syscall_fix = !no_syscall_fix;
  KILN_ASSIGN(c.kiln.unpack_kernel, parse_unpack_kernel(unpack, "--unpack-kernel"));
  KILN_ASSIGN(c.kiln.timer_floor, parse_timer_floor(timer_floor, "--timer-floor"));
  for (std::size_t i = 0; i < disks.size(); ++i) {
    KILN_ASSIGN(auto d, parse_disk_flag(disks[i], i));
    c.drives.push_back(std::move(d));
  }
  if (rng) c.entropy = EntropyConfig{};
  for (std::size_t i = 0; i < nets.size(); ++i) {
    KILN_ASSIGN(auto n, parse_net_flag(nets[i], i));
    c.network_interfaces.push_back(std::move(n));
  }
  if (!mmds.empty()) {
    KILN_ASSIGN(c.mmds, parse_mmds_flag(mmds, c.network_interfaces));
  }
  if (!vsock.empty()) {
    KILN_ASSIGN(c.vsock, parse_vsock_flag(vsock));
  }
  if (!metadata_file.empty()) {
    KILN_ASSIGN(cmd.metadata, read_metadata_file(metadata_file));
  }
  if (run->count("--profile") > 0 || run->count("--profile-hz") > 0 || run->count("--profile-symbols") > 0 ||
      run->count("--profile-top") > 0) {
    if (profile_path.empty()) return plain_error("--profile-hz, --profile-symbols and --profile-top need --profile FILE");
    c.kiln.profile =
        ProfileConfig{.path = profile_path, .hz = profile_hz, .symbols = profile_symbols, .top = profile_top};
    KILN_CHECK(check_profile(*c.kiln.profile, "--profile-"));
  }
  KILN_ASSIGN(c.machine_config.transport, parse_transport_name(transport, "--transport"));
  if (!cpu_config_file.empty()) {
    KILN_ASSIGN(c.cpu_config, read_cpu_config_file(cpu_config_file));
  }
  KILN_CHECK(validate(c));
  return cmd;
}

}  // namespace kiln
