#include "common/expunge_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_split.h"

namespace kfleet {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::vector<std::string> Lines(const std::vector<v1::ExpungeEntry>& entries) {
  std::vector<std::string> out;
  for (const v1::ExpungeEntry& e : entries) out.push_back(e.test() + "|" + e.comment());
  return out;
}

// Validates a list as kdevops writes them: tests alone, tests with comments holding '#' and URLs.
TEST(ExpungeFileTest, ParsesKdevopsList) {
  absl::StatusOr<std::vector<v1::ExpungeEntry>> entries = ParseExpungeFile(
      "generic/245\n"
      "generic/531 # korg#218226 xfs assert fs/xfs/xfs_message.c:102\n"
      "xfs/168 # Hung:1/6 https://gist.github.com/x/2770\n",
      "xfs_crc.txt");
  ASSERT_TRUE(entries.ok()) << entries.status();
  EXPECT_THAT(
      Lines(*entries),
      ElementsAre("generic/245|", "generic/531|korg#218226 xfs assert fs/xfs/xfs_message.c:102",
                  "xfs/168|Hung:1/6 https://gist.github.com/x/2770"));
}

// Validates comment lines, blank lines, tabs, CRLF, a missing final newline and duplicates (the
// first line wins).
TEST(ExpungeFileTest, CommentsBlanksAndOddEndings) {
  absl::StatusOr<std::vector<v1::ExpungeEntry>> entries = ParseExpungeFile(
      "# Known failures\n\n   \n#generic/999\n\tgeneric/475\t# 1/15\r\ngeneric/388 #\n"
      "generic/475 # again\next4/034",
      "f.txt");
  ASSERT_TRUE(entries.ok()) << entries.status();
  EXPECT_THAT(Lines(*entries), ElementsAre("generic/475|1/15", "generic/388|", "ext4/034|"));
  EXPECT_THAT(*ParseExpungeFile("", "empty.txt"), IsEmpty());
  EXPECT_THAT(*ParseExpungeFile("\n# nothing\n", "c.txt"), IsEmpty());
}

// Validates that every bad line is reported at once, each with FILE:LINE, the problem and the fix.
TEST(ExpungeFileTest, ReportsEveryBadLine) {
  absl::StatusOr<std::vector<v1::ExpungeEntry>> entries = ParseExpungeFile(
      "generic/001\ngeneric 002\n/003\nxfs/\ngeneric/004 # ok\nfoo/bar/baz # x\n", "6.1/xfs.txt");
  ASSERT_FALSE(entries.ok());
  EXPECT_EQ(entries.status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<std::string> lines = absl::StrSplit(entries.status().message(), '\n');
  ASSERT_EQ(lines.size(), 4u) << entries.status();
  EXPECT_THAT(lines[0], HasSubstr("6.1/xfs.txt:2: \"generic 002\" is not a test name"));
  EXPECT_THAT(lines[0], HasSubstr("SUITE/NAME (e.g. generic/388)"));
  EXPECT_THAT(lines[1], HasSubstr("6.1/xfs.txt:3: \"/003\""));
  EXPECT_THAT(lines[2], HasSubstr("6.1/xfs.txt:4: \"xfs/\""));
  EXPECT_THAT(lines[3], HasSubstr("6.1/xfs.txt:6: \"foo/bar/baz\""));
}

// Validates the bounds: file size, line length, NUL bytes, and the cap on errors listed.
TEST(ExpungeFileTest, Bounds) {
  std::string big(kMaxExpungeFileBytes + 1, '\n');
  EXPECT_EQ(ParseExpungeFile(big, "big.txt").status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(ParseExpungeFile(big, "big.txt").status().message(), HasSubstr("big.txt: "));

  std::string long_line = "generic/001 # " + std::string(kMaxExpungeLineBytes, 'x') + "\n";
  absl::Status s = ParseExpungeFile("generic/002\n" + long_line, "l.txt").status();
  EXPECT_THAT(s.message(), HasSubstr("l.txt:2: line of 4110 bytes is over the limit of 4096"));

  s = ParseExpungeFile(std::string("generic/001\0\n", 13), "nul.txt").status();
  EXPECT_THAT(s.message(), HasSubstr("nul.txt:1: the line has a NUL byte"));

  std::string many;
  for (int i = 0; i < 100; ++i) many += "bad line\n";
  s = ParseExpungeFile(many, "m.txt").status();
  std::vector<std::string> lines = absl::StrSplit(s.message(), '\n');
  EXPECT_EQ(lines.size(), 21u);
  EXPECT_EQ(lines.back(), "m.txt: more errors after line 20 not shown");
}

// Validates kdevops-style output and that parsing it gives the entries back.
TEST(ExpungeFileTest, FormatRoundTrip) {
  std::vector<v1::ExpungeEntry> entries(3);
  entries[0].set_test("generic/388");
  entries[0].set_comment("bsz#3 crash");
  entries[1].set_test("xfs/001");
  entries[2].set_test("generic/475");
  entries[2].set_comment(" failed 3/3\nsecond line ");
  std::string text = FormatExpungeFile(entries);
  EXPECT_EQ(text, "generic/388 # bsz#3 crash\nxfs/001\ngeneric/475 # failed 3/3 second line\n");
  absl::StatusOr<std::vector<v1::ExpungeEntry>> back = ParseExpungeFile(text, "x");
  ASSERT_TRUE(back.ok());
  EXPECT_THAT(Lines(*back), ElementsAre("generic/388|bsz#3 crash", "xfs/001|",
                                        "generic/475|failed 3/3 second line"));
  EXPECT_EQ(FormatExpungeFile({}), "");
}

// Validates the layout KERNEL/FS/unassigned/SECTION.txt both ways, and what it refuses.
TEST(ExpungePathTest, BothWays) {
  EXPECT_EQ(ExpungePath("6.11.0-rc1+", "xfs", "xfs_crc"), "6.11.0-rc1+/xfs/unassigned/xfs_crc.txt");
  absl::StatusOr<ExpungeLocation> l = ParseExpungePath("6.11.0-rc1+/xfs/unassigned/xfs_crc.txt");
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->kernel, "6.11.0-rc1+");
  EXPECT_EQ(l->fs, "xfs");
  EXPECT_EQ(l->section, "xfs_crc");

  for (const char* bad :
       {"xfs/unassigned/xfs_crc.txt", "6.1/xfs/assigned/xfs_crc.txt", "6.1/xfs/unassigned/xfs_crc",
        "6.1/xfs/unassigned/.txt", "../xfs/unassigned/a.txt", "6.1/xfs/unassigned/a/b.txt"}) {
    absl::StatusOr<ExpungeLocation> p = ParseExpungePath(bad);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(p.status().message(), HasSubstr("KERNEL/FS/unassigned/SECTION.txt")) << bad;
  }
  EXPECT_TRUE(CheckExpungeLocation("any", "nfs", "all").ok());
  EXPECT_THAT(CheckExpungeLocation("6.1", "x fs", "s").message(), HasSubstr("file system"));
  EXPECT_THAT(CheckExpungeLocation("6.1", "xfs", "").message(), HasSubstr("section is empty"));
  EXPECT_FALSE(CheckExpungeLocation("a/b", "xfs", "s").ok());
  EXPECT_FALSE(CheckExpungeLocation(std::string(256, 'k'), "xfs", "s").ok());
}

}  // namespace
}  // namespace kfleet
