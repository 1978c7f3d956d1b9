#include "common/files.h"

#include <gtest/gtest.h>
#include <stdlib.h>

namespace kfleet {
namespace {

// Validates that atomic writes replace content, reads are bounded, and errors name the path.
TEST(FilesTest, AtomicWriteAndBoundedRead) {
  char tmpl[] = "/tmp/kfleet-files-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  ASSERT_TRUE(MakeDirs(dir + "/a/b").ok());
  std::string path = dir + "/a/b/f";
  ASSERT_TRUE(WriteFileAtomic(path, "one").ok());
  ASSERT_TRUE(WriteFileAtomic(path, "two").ok());
  EXPECT_EQ(*ReadFile(path), "two");
  auto big = ReadFile(path, 2);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);
  auto missing = ReadFile(dir + "/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(dir + "/nope"), absl::string_view::npos);
}

}  // namespace
}  // namespace kfleet
