#include "agent/host/facts.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "common/files.h"

namespace kfleet::agent {
namespace {

// Validates that the host id is created once and then stable, and a damaged one is refused.
TEST(FactsTest, HostIdStable) {
  char tmpl[] = "/tmp/kfleet-facts-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  auto first = LoadOrCreateHostId(dir);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->substr(0, 2), "h-");
  EXPECT_EQ(*LoadOrCreateHostId(dir), *first);
  ASSERT_TRUE(WriteFileAtomic(dir + "/host_id", "../../bad\n").ok());
  auto bad = LoadOrCreateHostId(dir);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("remove it"), absl::string_view::npos);
}

// Validates that the controller address is found on a kernel command line.
TEST(FactsTest, KernelCmdline) {
  EXPECT_EQ(KernelCmdlineValue("console=ttyS0 kfleet.controller=10.0.2.100:7400 quiet",
                               "kfleet.controller"),
            "10.0.2.100:7400");
  EXPECT_EQ(KernelCmdlineValue("console=ttyS0 kfleet.controllerx=1", "kfleet.controller"), "");
  EXPECT_EQ(KernelCmdlineValue("", "kfleet.controller"), "");
}

TEST(FactsTest, CollectsBasics) {
  v1::HostFacts f = CollectFacts();
  EXPECT_FALSE(f.kernel_release().empty());
  EXPECT_GT(f.cpus(), 0u);
  EXPECT_GT(f.memory_bytes(), 0u);
  EXPECT_EQ(BootId().size(), 36u);
}

}  // namespace
}  // namespace kfleet::agent
