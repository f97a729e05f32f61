#include "virtio/block/image.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <cstring>

namespace kiln::virtio {

Result<DiskImage> DiskImage::open(const std::string& path, bool read_only, std::string_view field) {
  if (path.empty()) return plain_error("{}: no image path given", field);
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return plain_error("{} {}: no such file; give the path of a raw disk image", field, path);
    return errno_error("{} {}", field, path);
  }
  if (S_ISDIR(st.st_mode))
    return plain_error("{} {}: is a directory; give a raw disk image file or a block device", field, path);
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
    return plain_error("{} {}: is neither a regular file nor a block device", field, path);
  DiskImage img;
  img.path = path;
  img.read_only = read_only;
  img.fd.reset(::open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
  if (!img.fd) {
    if (!read_only && (errno == EACCES || errno == EROFS || errno == EPERM))
      return plain_error("{} {}: cannot be opened for writing ({}); make the disk read-only (readonly, or "
                         "is_read_only: true) or change the file's permissions",
                         field, path, std::strerror(errno));
    return errno_error("{} {}: cannot open", field, path);
  }
  struct flock lock{};
  lock.l_type = read_only ? F_RDLCK : F_WRLCK;
  lock.l_whence = SEEK_SET;
  if (::fcntl(img.fd.get(), F_OFD_SETLK, &lock) != 0) {
    if (errno == EAGAIN || errno == EACCES)
      return plain_error("{} {}: the image is in use: another process (another kiln?) holds a lock on it{}", field,
                         path, read_only ? " for writing" : "");
    return errno_error("{} {}: cannot lock the image", field, path);
  }
  if (S_ISBLK(st.st_mode)) {
    std::uint64_t bytes = 0;
    if (::ioctl(img.fd.get(), BLKGETSIZE64, &bytes) != 0) return errno_error("{} {}: cannot read the device's size", field, path);
    img.size = bytes;
  } else {
    img.size = static_cast<std::uint64_t>(st.st_size);
  }
  return img;
}

}  // namespace kiln::virtio
