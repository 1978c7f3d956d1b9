#include "controller/metrics/file_sd.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>

#include "common/files.h"

namespace kfleet::controller {
namespace {

using ::testing::HasSubstr;

class FileSdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kfleet-file-sd-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/kfleet-hosts.json";
  }
  void TearDown() override {
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  std::string dir_;
  std::string path_;
};

const std::vector<SdHost> kHosts = {
    {"mail", {{"role", "mail"}, {"kfleet.io/site", "home"}}, "192.0.2.10:9100"},
    {"guest-2", {{"pool", "local"}}, ""},  // no /metrics of its own
    {"builder", {{"role", "builder"}}, "[2001:db8::1]:9100"},
};

// Validates the file_sd format: hosts without an address left out, sorted by name, instance and
// host set to the name, host labels sanitized.
TEST_F(FileSdTest, Content) {
  nlohmann::json groups = nlohmann::json::parse(FileSdJson(kHosts));
  ASSERT_TRUE(groups.is_array());
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0]["targets"], nlohmann::json::array({"[2001:db8::1]:9100"}));
  EXPECT_EQ(groups[0]["labels"],
            nlohmann::json({{"instance", "builder"}, {"host", "builder"}, {"role", "builder"}}));
  EXPECT_EQ(groups[1]["targets"], nlohmann::json::array({"192.0.2.10:9100"}));
  EXPECT_EQ(
      groups[1]["labels"],
      nlohmann::json(
          {{"instance", "mail"}, {"host", "mail"}, {"kfleet_io_site", "home"}, {"role", "mail"}}));
  EXPECT_EQ(FileSdJson({}), "[]\n");
}

// Validates that the file is written atomically, readable by others, and only on change, also
// across a restart of the controller.
TEST_F(FileSdTest, WritesOnlyOnChange) {
  FileSdWriter writer(path_);
  absl::StatusOr<bool> wrote = writer.Write(kHosts);
  ASSERT_TRUE(wrote.ok()) << wrote.status();
  EXPECT_TRUE(*wrote);
  EXPECT_EQ(*ReadFile(path_), FileSdJson(kHosts));
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  EXPECT_NE(access((path_ + ".tmp").c_str(), F_OK), 0) << "temporary left behind";
  const ino_t inode = st.st_ino;

  EXPECT_FALSE(*writer.Write(kHosts));
  FileSdWriter restarted(path_);
  EXPECT_FALSE(*restarted.Write(kHosts));
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_ino, inode) << "rewritten although unchanged";

  std::vector<SdHost> fewer(kHosts.begin(), kHosts.begin() + 1);
  EXPECT_TRUE(*restarted.Write(fewer));
  EXPECT_EQ(*ReadFile(path_), FileSdJson(fewer));
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_NE(st.st_ino, inode) << "replaced in place rather than renamed over";
}

// Validates that a write into a missing directory fails with the path in the message.
TEST_F(FileSdTest, MissingDirectory) {
  FileSdWriter writer(dir_ + "/no/such/dir/hosts.json");
  absl::StatusOr<bool> wrote = writer.Write(kHosts);
  ASSERT_FALSE(wrote.ok());
  EXPECT_THAT(wrote.status().message(), HasSubstr("file_sd: create " + dir_ + "/no/such/dir"));
}

}  // namespace
}  // namespace kfleet::controller
