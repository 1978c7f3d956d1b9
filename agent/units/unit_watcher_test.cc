// What needs a real systemd is tested in a debian guest (tests/test_debian_guest.py); here, the
// refusal on a host that does not run it.
#include "agent/units/unit_watcher.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kfleet::agent {
namespace {

using ::testing::HasSubstr;

TEST(UnitWatcherTest, HostWithoutSystemdIsRefusedWithTheWayOut) {
  UnitTracker tracker;
  UnitWatcherOptions options;
  options.patterns = {"mbsync@*.service"};
  options.systemd_run_dir = "/nonexistent/run/systemd/system";
  auto watcher = UnitWatcher::Start(options, &tracker, {});
  ASSERT_FALSE(watcher.ok());
  EXPECT_EQ(watcher.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(watcher.status().message(), HasSubstr("this host does not run systemd"));
  EXPECT_THAT(watcher.status().message(), HasSubstr("drop --watch-units"));
  EXPECT_THAT(watcher.status().message(), HasSubstr("kctl schedule add"));
}

}  // namespace
}  // namespace kfleet::agent
