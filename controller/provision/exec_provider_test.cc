#include "controller/provision/exec_provider.h"

#include <dirent.h>
#include <stdlib.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/files.h"
#include "controller/provision/guest_files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kfleet::controller::provision {
namespace {

using ::testing::IsEmpty;

class ExecProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kfleet-exec-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { EXPECT_TRUE(RemoveTree(dir_).ok()); }

  // A provider whose create command keeps its request in dir_/request.json.
  ExecProvider Provider() {
    ExecProviderOptions o;
    o.create = "cat >'" + dir_ + "/request.json'";
    o.destroy = "cat >/dev/null";
    o.work_dir = dir_ + "/work";
    return ExecProvider(o);
  }

  nlohmann::json Request() {
    absl::StatusOr<std::string> text = ReadFile(dir_ + "/request.json");
    EXPECT_TRUE(text.ok()) << text.status();
    return nlohmann::json::parse(text.value_or("null"), nullptr, /*allow_exceptions=*/false);
  }

  // Files left in the provider's work directory.
  std::vector<std::string> WorkFiles() {
    std::vector<std::string> out;
    DIR* d = ::opendir((dir_ + "/work").c_str());
    if (d == nullptr) return out;
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") out.push_back(name);
    }
    ::closedir(d);
    return out;
  }

  static GuestSpec Spec() {
    GuestSpec spec;
    spec.name = "cloud-1";
    spec.pool = "cloud";
    spec.settings = {{"kfleet.host_id", "h-1"}, {"kfleet.name", "cloud-1"}};
    return spec;
  }

  std::string dir_;
};

// Validates that the create command gets the guest's token and CA as "enrolment", and that the
// request holding them does not stay on disk.
TEST_F(ExecProviderTest, CreatePassesEnrolment) {
  ExecProvider provider = Provider();
  GuestSpec spec = Spec();
  spec.fw_cfg[kTokenFwCfgName] = "kft_cloud";
  spec.fw_cfg[kCaCertFwCfgName] = "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n";
  absl::StatusOr<GuestInfo> info = provider.Create(spec);
  ASSERT_TRUE(info.ok()) << info.status();
  nlohmann::json j = Request();
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["op"], "create");
  EXPECT_EQ(j["settings"]["kfleet.host_id"], "h-1");
  EXPECT_EQ(j["enrolment"]["token"], "kft_cloud");
  EXPECT_EQ(j["enrolment"]["ca_pem"],
            "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n");
  EXPECT_FALSE(j.contains("fw_cfg"));
  EXPECT_THAT(WorkFiles(), IsEmpty());
}

// Validates that a guest without a token (a plaintext controller) gets no "enrolment".
TEST_F(ExecProviderTest, CreateWithoutEnrolment) {
  ExecProvider provider = Provider();
  ASSERT_TRUE(provider.Create(Spec()).ok());
  nlohmann::json j = Request();
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["name"], "cloud-1");
  EXPECT_FALSE(j.contains("enrolment"));
}

}  // namespace
}  // namespace kfleet::controller::provision
