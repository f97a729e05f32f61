#include "base/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "base/mmap.h"

namespace kiln {
namespace {

bool fd_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST(UniqueFd, ClosesOnDestruction) {
  int raw = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(raw, 0);
  { UniqueFd fd(raw); EXPECT_TRUE(fd_open(raw)); }
  EXPECT_FALSE(fd_open(raw));
}

TEST(UniqueFd, MoveTransfersOwnership) {
  UniqueFd a(::open("/dev/null", O_RDONLY));
  const int raw = a.get();
  UniqueFd b(std::move(a));
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): the moved-from state is the point
  EXPECT_EQ(b.get(), raw);
  b = UniqueFd();
  EXPECT_FALSE(fd_open(raw));
}

TEST(Mmap, AnonymousIsZeroedAndWritable) {
  auto m = Mmap::anonymous(1 << 16);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->size(), 1u << 16);
  EXPECT_EQ(m->data()[123], std::byte{0});
  m->data()[123] = std::byte{7};
  EXPECT_EQ(m->data()[123], std::byte{7});
}

}  // namespace
}  // namespace kiln
