#include "controller/provision/accel.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "common/files.h"

namespace kfleet::controller::provision {
namespace {

class QemuUserKvmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/kfleet-accel-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    kvm_ = dir_ + "/kvm";
    ASSERT_TRUE(WriteFileAtomic(kvm_, "").ok());
    ASSERT_EQ(::chown(kvm_.c_str(), 0, 0), 0);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Conf(const std::string& text) {
    std::string path = dir_ + "/qemu.conf";
    EXPECT_TRUE(WriteFileAtomic(path, text).ok());
    return path;
  }

  std::string dir_;
  std::string kvm_;
};

// Validates that a device only root may open is refused to another qemu user, as libvirt would
// find when it starts the guest.
TEST_F(QemuUserKvmTest, RootOnlyDeviceIsNotForOtherUsers) {
  ASSERT_EQ(::chmod(kvm_.c_str(), 0600), 0);
  EXPECT_FALSE(QemuUserMayOpenKvm(Conf("user = \"nobody\"\n"), kvm_));
  EXPECT_TRUE(QemuUserMayOpenKvm(Conf("user = \"root\"\n"), kvm_));
}

// Validates that the mode bits for others, and a commented-out user line, are read as libvirt
// reads them.
TEST_F(QemuUserKvmTest, OthersBitsAndCommentedUser) {
  ASSERT_EQ(::chmod(kvm_.c_str(), 0666), 0);
  EXPECT_TRUE(QemuUserMayOpenKvm(Conf("user = \"nobody\"\n"), kvm_));
  ASSERT_EQ(::chmod(kvm_.c_str(), 0660), 0);
  EXPECT_FALSE(QemuUserMayOpenKvm(Conf("#user = \"root\"\nuser = \"nobody\"\n"), kvm_));
  EXPECT_FALSE(QemuUserMayOpenKvm(Conf("user = \"nobody\"\n"), dir_ + "/missing"));
}

}  // namespace
}  // namespace kfleet::controller::provision
