#include "cli/kernel_paths.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>
#include <string>

namespace kfleet::cli {
namespace {

class KernelPathsTest : public ::testing::Test {
 protected:
  KernelPathsTest() {
    std::string pattern = ::testing::TempDir() + "kernel_paths_XXXXXX";
    dir_ = mkdtemp(pattern.data());
    mkdir((dir_ + "/linux").c_str(), 0755);
    std::ofstream(dir_ + "/base.config") << "CONFIG_X=y\n";
    std::ofstream(dir_ + "/debug.config") << "CONFIG_DEBUG=y\n";
  }
  ~KernelPathsTest() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  std::string dir_;
};

// Validates that a relative tree and config files found here become absolute.
TEST_F(KernelPathsTest, LocalPathsBecomeAbsolute) {
  v1::KernelSource k;
  k.set_tree("linux/");
  k.set_config("base.config+debug.config");
  MakeKernelPathsAbsolute(k, dir_);
  EXPECT_EQ(k.tree(), dir_ + "/linux");
  EXPECT_EQ(k.config(), dir_ + "/base.config+" + dir_ + "/debug.config");

  k.set_tree(".");
  MakeKernelPathsAbsolute(k, dir_ + "/linux");
  EXPECT_EQ(k.tree(), dir_ + "/linux");
}

// Validates that what is not a local file is sent as written: make targets, fragments of the
// tree, absolute paths, URLs, names that exist here as the wrong kind.
TEST_F(KernelPathsTest, OthersAreKept) {
  v1::KernelSource k;
  k.set_tree("https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git");
  k.set_config("defconfig+kvm_guest.config+/etc/x.config+linux+debug.config");
  MakeKernelPathsAbsolute(k, dir_);
  EXPECT_EQ(k.tree(), "https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git");
  EXPECT_EQ(k.config(), "defconfig+kvm_guest.config+/etc/x.config+linux+" + dir_ + "/debug.config");

  k.set_tree("base.config");  // a file, not a tree
  k.set_config("");
  MakeKernelPathsAbsolute(k, dir_);
  EXPECT_EQ(k.tree(), "base.config");
  EXPECT_EQ(k.config(), "");
}

}  // namespace
}  // namespace kfleet::cli
