#include "controller/provision/guest_files.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "common/files.h"
#include "gtest/gtest.h"

namespace kfleet::controller::provision {
namespace {

class GuestFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kfleet-guest-files-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

// Validates that guest directories are made reachable by others, and that an unreachable
// ancestor is found.
TEST_F(GuestFilesTest, SharedDirsAndUnsearchableAncestors) {
  ASSERT_EQ(::chmod(dir_.c_str(), 0700), 0);
  const std::string guest = dir_ + "/guests/g1";
  ASSERT_TRUE(MakeSharedDir(guest).ok());
  struct stat st;
  ASSERT_EQ(::stat(guest.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  EXPECT_EQ(UnsearchableDir(guest + "/disk.img"), dir_);
  ASSERT_EQ(::chmod(dir_.c_str(), 0711), 0);
  EXPECT_EQ(UnsearchableDir(guest + "/disk.img"), "");
}

// Validates that sparse files have their size, take no space, and are never overwritten.
TEST_F(GuestFilesTest, SparseFile) {
  const std::string path = dir_ + "/disk.img";
  ASSERT_TRUE(MakeSparseFile(path, 1ull << 30).ok());
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 1ll << 30);
  EXPECT_LT(st.st_blocks * 512, 1 << 20);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  EXPECT_EQ(MakeSparseFile(path, 1).code(), absl::StatusCode::kAlreadyExists);
}

// Validates the tail of a file, shorter files whole, and NotFound.
TEST_F(GuestFilesTest, ReadTail) {
  const std::string path = dir_ + "/console.log";
  ASSERT_TRUE(WriteFileAtomic(path, "0123456789").ok());
  EXPECT_EQ(ReadTail(path, 4).value_or("?"), "6789");
  EXPECT_EQ(ReadTail(path, 100).value_or("?"), "0123456789");
  EXPECT_EQ(ReadTail(path, 0).value_or("?"), "");
  EXPECT_EQ(ReadTail(dir_ + "/missing", 4).status().code(), absl::StatusCode::kNotFound);
}

// Validates that a copy replaces the target whole and leaves no temporary file.
TEST_F(GuestFilesTest, CopyFileAtomic) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/a", "new kernel").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/b", "old kernel, longer").ok());
  ASSERT_TRUE(CopyFileAtomic(dir_ + "/a", dir_ + "/b").ok());
  EXPECT_EQ(ReadFile(dir_ + "/b").value_or("?"), "new kernel");
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/b.tmp"));
  EXPECT_EQ(CopyFileAtomic(dir_ + "/missing", dir_ + "/c").code(), absl::StatusCode::kNotFound);
}

// Validates removal of a tree, and of nothing.
TEST_F(GuestFilesTest, RemoveTree) {
  ASSERT_TRUE(MakeSharedDir(dir_ + "/a/b").ok());
  ASSERT_TRUE(MakeSparseFile(dir_ + "/a/b/f", 10).ok());
  EXPECT_TRUE(RemoveTree(dir_ + "/a").ok());
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/a"));
  EXPECT_TRUE(RemoveTree(dir_ + "/a").ok());
}

}  // namespace
}  // namespace kfleet::controller::provision
