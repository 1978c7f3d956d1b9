#include "agent/outbox/segment.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace kfleet::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/kfleet-segment-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string LogPayload(uint64_t offset, const std::string& data) {
  kfleet::v1::OutboxRecord record;
  record.mutable_log()->set_command_id("c1");
  record.mutable_log()->set_offset(offset);
  record.mutable_log()->set_data(data);
  return record.SerializeAsString();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}

// Validates that framed records read back whole and in order, with their payload sizes.
TEST(SegmentTest, FramedRecordsReadBack) {
  TempDir dir;
  const std::string path = dir.path() + "/00000001.seg";
  std::string file;
  for (uint64_t i = 0; i < 3; ++i) file += FrameRecord(LogPayload(i, "data"));
  WriteFile(path, file);
  absl::StatusOr<ScannedSegment> scanned = ScanSegment(path);
  ASSERT_TRUE(scanned.ok()) << scanned.status();
  EXPECT_FALSE(scanned->torn);
  EXPECT_EQ(scanned->valid_bytes, file.size());
  ASSERT_EQ(scanned->records.size(), 3u);
  for (uint64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(scanned->records[i].record.log().offset(), i);
    EXPECT_EQ(scanned->records[i].bytes, LogPayload(i, "data").size());
  }
}

// Validates that a zero-filled tail, as a power loss can leave, counts as a torn append.
TEST(SegmentTest, ZeroFilledTailIsTorn) {
  TempDir dir;
  const std::string path = dir.path() + "/00000001.seg";
  const std::string record = FrameRecord(LogPayload(0, "data"));
  WriteFile(path, record + std::string(100, '\0'));
  absl::StatusOr<ScannedSegment> scanned = ScanSegment(path);
  ASSERT_TRUE(scanned.ok()) << scanned.status();
  EXPECT_TRUE(scanned->torn);
  EXPECT_EQ(scanned->valid_bytes, record.size());
  EXPECT_EQ(scanned->records.size(), 1u);
}

// Validates that an impossible length with data after it is damage, reported with file and offset.
TEST(SegmentTest, ImpossibleLengthIsDamage) {
  TempDir dir;
  const std::string path = dir.path() + "/00000001.seg";
  const std::string record = FrameRecord(LogPayload(0, "data"));
  WriteFile(path, record + std::string("\xff\xff\xff\xff\0\0\0\0", 8) + record);
  absl::StatusOr<ScannedSegment> scanned = ScanSegment(path);
  ASSERT_FALSE(scanned.ok());
  EXPECT_EQ(scanned.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(scanned.status().message()), HasSubstr(path));
  EXPECT_THAT(std::string(scanned.status().message()),
              HasSubstr(absl::StrCat("byte offset ", record.size())));
}

// Validates that segments list in numeric order and other files are ignored.
TEST(SegmentTest, ListSegmentsSortsNumerically) {
  TempDir dir;
  for (const char* name :
       {"00000010.seg", "100000000.seg", "00000002.seg", "acked", "x.seg", "0.seg", ".seg"}) {
    WriteFile(dir.path() + "/" + name, "");
  }
  absl::StatusOr<std::vector<uint64_t>> ids = ListSegments(dir.path());
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, ElementsAre(2, 10, 100000000));
  EXPECT_EQ(SegmentFileName(2), "00000002.seg");
}

// Validates that a writer counts whole records, and refuses to reuse an existing segment.
TEST(SegmentTest, WriterAppendsToNewFileOnly) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<SegmentWriter>> writer = SegmentWriter::Create(dir.path(), 7);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Append(LogPayload(0, "a"), /*sync=*/false).ok());
  ASSERT_TRUE((*writer)->Append(LogPayload(1, "b"), /*sync=*/true).ok());
  EXPECT_EQ((*writer)->size(), std::filesystem::file_size((*writer)->path()));
  EXPECT_EQ((*writer)->path(), dir.path() + "/00000007.seg");

  absl::StatusOr<std::unique_ptr<SegmentWriter>> again = SegmentWriter::Create(dir.path(), 7);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace kfleet::agent
