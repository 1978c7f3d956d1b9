#include "agent/kmsg/kmsg_record.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace kfleet::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

// Validates that a record's header fields, message and dictionary come out as the kernel meant.
TEST(KmsgRecordTest, ParsesHeaderMessageAndDictionary) {
  absl::StatusOr<KmsgRecord> record = ParseKmsgRecord(
      "6,339,5140900,-;NET: Registered protocol family 10\n SUBSYSTEM=net\n DEVICE=+net:lo\n");
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->priority, 6);
  EXPECT_EQ(record->facility, 0);
  EXPECT_EQ(record->seq, 339u);
  EXPECT_EQ(record->timestamp_us, 5140900u);
  EXPECT_EQ(record->flags, '-');
  EXPECT_EQ(record->message, "NET: Registered protocol family 10");
  EXPECT_THAT(record->dict, ElementsAre(Pair("SUBSYSTEM", "net"), Pair("DEVICE", "+net:lo")));
}

// Validates that facility and level are split out of the combined prefix (facility * 8 + level).
TEST(KmsgRecordTest, SplitsFacilityFromLevel) {
  absl::StatusOr<KmsgRecord> record = ParseKmsgRecord("30,7,100,-;systemd[1]: hello");
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->facility, 3);
  EXPECT_EQ(record->priority, 6);
}

// Validates that the kernel's \xNN escapes are undone in message and dictionary, and that a
// backslash that is not an escape survives.
TEST(KmsgRecordTest, UnescapesMessageAndDictionary) {
  absl::StatusOr<KmsgRecord> record =
      ParseKmsgRecord("4,1,2,-;a\\x0ab\\x09c\\x5cd \\xZZ \\x4\n DEVICE=c\\x3d1\n");
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->message, "a\nb\tc\\d \\xZZ \\x4");
  EXPECT_THAT(record->dict, ElementsAre(Pair("DEVICE", "c=1")));
  EXPECT_EQ(UnescapeKmsg("\\x"), "\\x");
  EXPECT_EQ(UnescapeKmsg("\\xff"), std::string(1, '\xff'));
}

// Validates that header fields after FLAGS are ignored, except the printk caller id.
TEST(KmsgRecordTest, KeepsCallerAndIgnoresOtherFields) {
  absl::StatusOr<KmsgRecord> record = ParseKmsgRecord("6,5,6,c,caller=T42,future=1;part");
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->flags, 'c');
  EXPECT_EQ(record->caller, "T42");
  EXPECT_EQ(record->message, "part");
}

// Validates that an empty message and a message holding ';' and ',' parse.
TEST(KmsgRecordTest, EmptyMessageAndSeparatorsInMessage) {
  absl::StatusOr<KmsgRecord> empty = ParseKmsgRecord("3,9,10,-;\n");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->message, "");
  absl::StatusOr<KmsgRecord> separators = ParseKmsgRecord("3,9,10,-;a;b,c=d");
  ASSERT_TRUE(separators.ok()) << separators.status();
  EXPECT_EQ(separators->message, "a;b,c=d");
}

// Validates that malformed records are rejected with a message naming what is wrong.
TEST(KmsgRecordTest, RejectsMalformedRecords) {
  struct Case {
    std::string input;
    std::string error;
  };
  for (const Case& c : std::vector<Case>{
           {"6,1,2,-", "no ';'"},
           {"6,1,2;msg", "3 fields"},
           {"x,1,2,-;msg", "priority"},
           {"-6,1,2,-;msg", "priority"},
           {"6,+1,2,-;msg", "sequence"},
           {"6,1 ,2,-;msg", "sequence"},
           {"6,1,2.5,-;msg", "timestamp"},
           {"6,1,2,--;msg", "flags"},
           {"6,1,2,-;msg\nDEVICE=x", "does not start with a space"},
           {"6,1,2,-;msg\n NOEQUALS", "KEY=VALUE"},
           {"6,1,2,-\n;msg", "no ';'"},
       }) {
    absl::StatusOr<KmsgRecord> record = ParseKmsgRecord(c.input);
    ASSERT_FALSE(record.ok()) << c.input;
    EXPECT_EQ(record.status().code(), absl::StatusCode::kInvalidArgument) << c.input;
    EXPECT_THAT(record.status().message(), HasSubstr(c.error)) << c.input;
  }
}

// Validates the size bound: the kernel's largest record parses, one byte more does not.
TEST(KmsgRecordTest, RejectsRecordsLargerThanTheKernelSends) {
  const std::string header = "6,1,2,-;";
  std::string largest = header + std::string(kMaxKmsgRecordBytes - header.size(), 'a');
  EXPECT_TRUE(ParseKmsgRecord(largest).ok());
  absl::StatusOr<KmsgRecord> larger = ParseKmsgRecord(largest + "a");
  ASSERT_FALSE(larger.ok());
  EXPECT_THAT(larger.status().message(), HasSubstr("larger than the kernel's limit of 8192"));
}

// Validates the dmesg forms: plain, with `dmesg -r`'s level, and with a caller id.
TEST(KmsgRecordTest, ParsesDmesgLines) {
  absl::StatusOr<KmsgRecord> plain = ParseDmesgLine("[12243.018535] Out of memory: Killed");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->timestamp_us, 12243018535u);
  EXPECT_EQ(plain->priority, -1);
  EXPECT_EQ(plain->message, "Out of memory: Killed");

  absl::StatusOr<KmsgRecord> raw = ParseDmesgLine("<3>[    1.5] short fraction");
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(raw->priority, 3);
  EXPECT_EQ(raw->timestamp_us, 1500000u);

  absl::StatusOr<KmsgRecord> caller = ParseDmesgLine("[    0.123456][    T1] Linux version");
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->caller, "T1");
  EXPECT_EQ(caller->message, "Linux version");

  absl::StatusOr<KmsgRecord> bracket = ParseDmesgLine("[    2.000000] [drm] Initialized");
  ASSERT_TRUE(bracket.ok()) << bracket.status();
  EXPECT_EQ(bracket->message, "[drm] Initialized");
}

// Validates that text that is not a dmesg line is rejected.
TEST(KmsgRecordTest, RejectsBadDmesgLines) {
  for (const char* line : {"no timestamp", "[abc] x", "[1.2 x", "<x>[1.0] y", "<4[1.0] y", "[] x",
                           "<+4>[1.0] y", "[+1.0] y"}) {
    absl::StatusOr<KmsgRecord> record = ParseDmesgLine(line);
    EXPECT_FALSE(record.ok()) << line;
    EXPECT_EQ(record.status().code(), absl::StatusCode::kInvalidArgument) << line;
  }
  EXPECT_FALSE(ParseDmesgLine("[1.0] " + std::string(kMaxKmsgRecordBytes, 'a')).ok());
}

// Validates that an excerpt mixes raw records with their dictionaries and dmesg lines, that a
// dmesg line's indented continuation joins its message, and that dmesg lines are numbered.
TEST(KmsgRecordTest, ParsesMixedExcerpts) {
  absl::StatusOr<std::vector<KmsgRecord>> records = ParseKmsgText(
      "6,10,100,-;raw\n SUBSYSTEM=pci\n\n[    1.000000] first\n               second line\n"
      "[    2.000000] third\n");
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 3u);
  EXPECT_EQ((*records)[0].seq, 10u);
  EXPECT_THAT((*records)[0].dict, ElementsAre(Pair("SUBSYSTEM", "pci")));
  EXPECT_EQ((*records)[1].seq, 4u);
  EXPECT_EQ((*records)[1].message, "first\nsecond line");
  EXPECT_EQ((*records)[2].seq, 6u);
  EXPECT_EQ((*records)[2].message, "third");
}

// Validates that a bad line in an excerpt is named by its line number.
TEST(KmsgRecordTest, NamesTheBadLineOfAnExcerpt) {
  absl::StatusOr<std::vector<KmsgRecord>> records = ParseKmsgText("[1.0] ok\ngarbage here\n");
  ASSERT_FALSE(records.ok());
  EXPECT_THAT(records.status().message(), HasSubstr("line 2: "));
  absl::StatusOr<std::vector<KmsgRecord>> orphan = ParseKmsgText(" KEY=value\n");
  ASSERT_FALSE(orphan.ok());
  EXPECT_THAT(orphan.status().message(), HasSubstr("line 1: a dictionary line outside"));
}

}  // namespace
}  // namespace kfleet::agent
