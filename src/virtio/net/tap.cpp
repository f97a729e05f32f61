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
  // No offloads: the host hands kiln whole frames with their checksums.
  if (::ioctl(fd.get(), TUNSETOFFLOAD, 0) != 0) return errno_error("tap {}: TUNSETOFFLOAD", name);
  return std::unique_ptr<TapBackend>(new TapBackend(name, std::move(fd)));
}

Result<bool> TapBackend::send(std::span<const std::byte> frame) {
  NetHeader hdr{};
  iovec iov[2] = {{&hdr, sizeof hdr}, {const_cast<std::byte*>(frame.data()), frame.size()}};
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
  NetHeader hdr{};
  iovec iov[2] = {{&hdr, sizeof hdr}, {buf.data(), buf.size()}};
  for (;;) {
    const ssize_t n = ::readv(fd_.get(), iov, 2);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return errno_error("readv");
    }
    if (static_cast<std::size_t>(n) <= sizeof hdr) continue;  // nothing after the header: skipped
    const std::size_t len = static_cast<std::size_t>(n) - sizeof hdr;
    if ((hdr.flags & kNetHdrNeedsCsum) && !complete_checksum(buf.first(len), hdr.csum_start, hdr.csum_offset))
      continue;  // a checksum position outside the frame: not a frame to pass on
    if (hdr.gso_type != kNetGsoNone) continue;  // kiln asked for no offloads
    return len;
  }
}

}  // namespace kiln::virtio
