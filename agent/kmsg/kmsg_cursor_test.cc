#include "agent/kmsg/kmsg_cursor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace kfleet::agent {
namespace {

using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/kfleet-kmsg-cursor-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Validates that a saved cursor loads back, and that saving again replaces it.
TEST(KmsgCursorTest, RoundTrips) {
  TempDir dir;
  const std::string path = dir.path() + "/kmsg.cursor";
  ASSERT_TRUE(SaveCursor(path, "0b5e0c1c-6b53-4d7c-9a0e-3f6c1d2e4a5b", 12345).ok());
  absl::StatusOr<KmsgCursor> cursor = LoadCursor(path);
  ASSERT_TRUE(cursor.ok()) << cursor.status();
  EXPECT_EQ(cursor->boot_id, "0b5e0c1c-6b53-4d7c-9a0e-3f6c1d2e4a5b");
  EXPECT_EQ(cursor->seq, 12345u);
  ASSERT_TRUE(SaveCursor(path, "other", 18446744073709551615u).ok());
  cursor = LoadCursor(path);
  ASSERT_TRUE(cursor.ok()) << cursor.status();
  EXPECT_EQ(cursor->boot_id, "other");
  EXPECT_EQ(cursor->seq, 18446744073709551615u);
}

// Validates that a missing cursor is NotFound, so that a first start reads the whole buffer.
TEST(KmsgCursorTest, MissingIsNotFound) {
  TempDir dir;
  EXPECT_EQ(LoadCursor(dir.path() + "/none").status().code(), absl::StatusCode::kNotFound);
}

// Validates that a damaged cursor file is rejected with a message that names it and the fix.
TEST(KmsgCursorTest, RejectsDamagedFiles) {
  TempDir dir;
  const std::string path = dir.path() + "/kmsg.cursor";
  for (const char* text : {"", "boot_id=a\n", "boot_id=a\nseq=\n", "boot_id=a\nseq=-1\n",
                           "boot_id=a\nseq=12x\n", "boot_id=\nseq=1\n", "seq=1\nboot_id=a\n",
                           "boot_id=a\nseq=1\nextra\n", "boot_id=a\nseq=1"}) {
    std::ofstream(path, std::ios::trunc) << text;
    absl::StatusOr<KmsgCursor> cursor = LoadCursor(path);
    ASSERT_FALSE(cursor.ok()) << text;
    EXPECT_EQ(cursor.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(cursor.status().message(), HasSubstr(path));
    EXPECT_THAT(cursor.status().message(), HasSubstr("delete it"));
  }
}

// Validates that a boot id that could not be read back is refused when saving.
TEST(KmsgCursorTest, RejectsBadBootIds) {
  TempDir dir;
  for (const char* boot_id : {"", "a b", "a\nseq=9", "a=b"}) {
    absl::Status status = SaveCursor(dir.path() + "/c", boot_id, 1);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << boot_id;
  }
}

// Validates that only a cursor of the same boot says where to resume.
TEST(KmsgCursorTest, ResumesOnlyInTheSameBoot) {
  EXPECT_EQ(ResumeAfter({"boot-a", 7}, "boot-a"), 7u);
  EXPECT_EQ(ResumeAfter({"boot-a", 7}, "boot-b"), std::nullopt);
  EXPECT_EQ(ResumeAfter({"", 7}, ""), std::nullopt);
}

}  // namespace
}  // namespace kfleet::agent
