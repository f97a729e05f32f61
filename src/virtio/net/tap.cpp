#include "virtio/net/tap.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

#include "virtio/net/net.h"

namespace kiln::virtio {

Result<std::unique_ptr<TapBackend>> TapBackend::open(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ)
    return plain_error("'{}' is not a network interface name (1 to {} characters)", name, IFNAMSIZ - 1);
  // TUNSETIFF would create a missing tap (with CAP_NET_ADMIN): kiln only takes one that exists.
  if (::if_nametoindex(name.c_str()) == 0)
    return plain_error("there is no network interface '{}': create the tap first, e.g. `ip tuntap add {} mode tap user "
                       "$USER && ip link set {} up`",
                       name, name, name);
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!fd && (errno == EACCES || errno == EPERM))
    return plain_error("tap {}: kiln may not open /dev/net/tun ({}): give this user read-write access to it (it is "
                       "mode 0666 on most systems)",
                       name, std::strerror(errno));
  if (!fd) return errno_error("tap {}: cannot open /dev/net/tun", name);
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0) {
    const int err = errno;
    if (err == EPERM || err == EACCES)
      return plain_error("tap {}: kiln may not open it ({}): it belongs to another user or group; make it with "
                         "`ip tuntap add {} mode tap user $USER`, or run kiln as its owner",
                         name, std::strerror(err), name);
    if (err == EINVAL)
      return plain_error("tap {}: not a tap device kiln can attach to ({}): is it a tun, or without vnet headers?",
                         name, std::strerror(err));
    if (err == EBUSY)
      return plain_error("tap {}: in use by another program ({}); each tap serves one VM", name, std::strerror(err));
    errno = err;
    return errno_error("tap {}: TUNSETIFF", name);
  }
  int hdr = sizeof(NetHeader);
  if (::ioctl(fd.get(), TUNSETVNETHDRSZ, &hdr) != 0) return errno_error("tap {}: TUNSETVNETHDRSZ", name);
  // What this tap can hand kiln (the GUEST_* offloads), asked of it as QEMU does; it takes the
  // guest's checksum and segmentation offloads whenever it takes vnet headers. Until a driver
  // takes some, the host hands kiln whole frames with their checksums.
  std::uint64_t offloads = kNetFCsum | kNetHostSegmentation;
  if (::ioctl(fd.get(), TUNSETOFFLOAD, TUN_F_CSUM) == 0) {
    offloads |= kNetFGuestCsum;
    if (::ioctl(fd.get(), TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN) == 0)
      offloads |= kNetFGuestTso4 | kNetFGuestTso6 | kNetFGuestEcn;
    if (::ioctl(fd.get(), TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_UFO) == 0) offloads |= kNetFGuestUfo;
  }
  if (::ioctl(fd.get(), TUNSETOFFLOAD, 0) != 0) return errno_error("tap {}: TUNSETOFFLOAD", name);
  return std::unique_ptr<TapBackend>(new TapBackend(name, std::move(fd), offloads));
}

Result<void> TapBackend::set_guest_offloads(std::uint64_t taken) {
  unsigned flags = 0;
  if (taken & kNetFGuestCsum) {
    flags |= TUN_F_CSUM;
    if (taken & kNetFGuestTso4) flags |= TUN_F_TSO4;
    if (taken & kNetFGuestTso6) flags |= TUN_F_TSO6;
    if ((taken & kNetFGuestEcn) && (flags & (TUN_F_TSO4 | TUN_F_TSO6))) flags |= TUN_F_TSO_ECN;
    if (taken & kNetFGuestUfo) flags |= TUN_F_UFO;
  }
  if (::ioctl(fd_.get(), TUNSETOFFLOAD, flags) != 0) return errno_error("TUNSETOFFLOAD {:#x}", flags);
  return {};
}

Result<bool> TapBackend::send(const NetHeader& hdr, std::span<const std::byte> frame) {
  // The header goes as the guest wrote it: the host's stack checks a segmentation request itself.
  iovec iov[2] = {{const_cast<NetHeader*>(&hdr), sizeof hdr}, {const_cast<std::byte*>(frame.data()), frame.size()}};
  for (;;) {
    const ssize_t n = ::writev(fd_.get(), iov, 2);
    if (n >= 0) return true;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    // The interface is down, or the frame was refused: dropped, as a wire would.
    if (errno == EIO || errno == EINVAL) return false;
    return errno_error("writev");
  }
}

Result<std::size_t> TapBackend::receive(std::span<std::byte> buf) {
  // The tap writes its vnet header (TUNSETVNETHDRSZ: the whole NetHeader) and the frame after it.
  for (;;) {
    const ssize_t n = ::read(fd_.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return errno_error("read");
    }
    if (static_cast<std::size_t>(n) <= sizeof(NetHeader)) continue;  // nothing after the header: skipped
    return static_cast<std::size_t>(n) - sizeof(NetHeader);  // the device checks the header's offloads
  }
}

}  // namespace kiln::virtio
