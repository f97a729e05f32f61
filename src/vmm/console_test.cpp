#include "vmm/console.h"

#include <unistd.h>

#include <vector>

#include <gtest/gtest.h>

namespace kiln {
namespace {

using Event = ConsoleOutput::Event;

std::span<const std::byte> b(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

TEST(ConsoleOutput, WritesAllBytesToTheFd) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ConsoleOutput out(p[1], [](Event) {});
  out.write(b("hello\r\n"));
  char buf[16] = {};
  ASSERT_EQ(::read(p[0], buf, sizeof(buf)), 7);
  EXPECT_STREQ(buf, "hello\r\n");
  EXPECT_EQ(out.bytes_written(), 7u);
  ::close(p[0]);
  ::close(p[1]);
}

TEST(ConsoleOutput, SeesPanicAndPowerOffLines) {
  std::vector<Event> ev;
  ConsoleOutput out(-1, [&](Event e) { ev.push_back(e); });
  out.write(b("[    1.0] Kernel panic - not syncing: Attempted to kill init!"));
  EXPECT_TRUE(ev.empty()) << "only whole lines count";
  out.write(b("\r\n[    1.1] ---[ end Kernel panic - not syncing: Attempted to kill init! ]---\r\n"));
  out.write(b("[    2.0] reboot: Power down\r\n"));
  EXPECT_EQ(ev, (std::vector<Event>{Event::kPanicStart, Event::kPanicEnd, Event::kPowerOff}));
}

TEST(ConsoleOutput, UserTextMentioningPowerDownMidLineIsNotPowerOff) {
  std::vector<Event> ev;
  ConsoleOutput out(-1, [&](Event e) { ev.push_back(e); });
  out.write(b("echo reboot: Power down later\n"));
  EXPECT_TRUE(ev.empty());
}

TEST(ConsoleOutput, VeryLongLinesAreBounded) {
  std::vector<Event> ev;
  ConsoleOutput out(-1, [&](Event e) { ev.push_back(e); });
  std::string junk(100000, 'a');
  out.write(b(junk));
  EXPECT_EQ(out.line_kept(), ConsoleOutput::kMaxLine) << "a line that never ends is not kept whole";
  out.write(b(junk + "Kernel panic - not syncing: past the bound\n"));
  EXPECT_TRUE(ev.empty()) << "words past the bound are not scanned";
  EXPECT_EQ(out.line_kept(), 0u);
  EXPECT_EQ(out.bytes_written(), 2 * junk.size() + 43) << "every byte still reaches the console";
  out.write(b("Kernel panic - not syncing: a short line\n"));
  ASSERT_EQ(ev.size(), 1u) << "the next line is scanned as before";
  EXPECT_EQ(ev[0], Event::kPanicStart);
}

TEST(EscapeFilter, CtrlAXQuits) {
  EscapeFilter f;
  auto r = f.feed(b("ls\x01x"));
  EXPECT_EQ(r.forward, "ls");
  EXPECT_TRUE(r.quit);
}

TEST(EscapeFilter, EscapeSplitAcrossReads) {
  EscapeFilter f;
  auto r = f.feed(b("a\x01"));
  EXPECT_EQ(r.forward, "a");
  EXPECT_FALSE(r.quit);
  r = f.feed(b("x"));
  EXPECT_TRUE(r.quit);
}

TEST(EscapeFilter, DoubleCtrlASendsOneAndOtherKeysAreSwallowed) {
  EscapeFilter f;
  auto r = f.feed(b("\x01\x01z\x01qy"));
  EXPECT_EQ(r.forward, std::string("\x01zy"));
  EXPECT_FALSE(r.quit);
}

}  // namespace
}  // namespace kiln
